"""Building environments for real: each imports its own package version and the server's
numerai_autopilot and distributed; unchanged requirements are not rebuilt; changed ones make
it stale (with the command); Dask's held versions are refused; a missing interpreter fails
with its name. Real venvs and pip from local wheels, no network."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import pytest
from envs_project import Project

import numerai_autopilot
from numerai_autopilot.config import AppConfig
from numerai_autopilot.envs import EnvState, build, check, describe, env_dir, env_python
from numerai_autopilot.errors import ConfigError, EnvironmentBuildError

PROBE = """
import json, autopilot_probe, distributed, itsdangerous, numerai_autopilot
print(json.dumps({"probe": autopilot_probe.__version__, "distributed": distributed.__version__,
                  "itsdangerous": getattr(itsdangerous, "__version__", "server"),
                  "autopilot": numerai_autopilot.__file__}))
"""


def imported(config: AppConfig, name: str) -> dict[str, str]:
    done = subprocess.run([str(env_python(config, name)), "-c", PROBE], capture_output=True,
                          text=True, timeout=60, check=True)
    result: dict[str, str] = json.loads(done.stdout)
    return result


def test_each_environment_imports_its_own_version_and_the_servers_packages(
    built: tuple[Project, AppConfig],
) -> None:
    _, config = built
    one, two = imported(config, "one"), imported(config, "two")
    assert (one["probe"], two["probe"]) == ("1.0", "2.0")
    for seen in (one, two):
        assert seen["distributed"] == importlib.metadata.version("distributed")
        assert Path(seen["autopilot"]) == Path(numerai_autopilot.__file__)
    # What an environment installs comes before the server's copy on its sys.path.
    assert two["itsdangerous"] == "0.0.1"
    assert one["itsdangerous"] != "0.0.1"
    assert check(config, "one").ready and check(config, "two").problem is None
    assert env_dir(config, "one") == config.base_dir / ".autopilot" / "envs" / "one"


def test_unchanged_requirements_are_not_rebuilt(built: tuple[Project, AppConfig]) -> None:
    _, config = built
    lines: list[str] = []
    result = build(config, "one", log=lines.append)
    assert not result.built and result.seconds < 1.0
    assert "up to date" in lines[-1]


def test_changed_requirements_make_it_stale_until_rebuilt(
    built: tuple[Project, AppConfig],
) -> None:
    project, config = built
    before = env_dir(config, "one").resolve()
    path = project.folder / "envs" / "one.txt"
    path.write_text(path.read_text() + "# pinned for the 2024 model\n")
    status = check(config, "one")
    assert not status.ready and status.state is EnvState.STALE
    assert status.problem == ("environment 'one' is stale: envs/one.txt changed since it was "
                              "built; run `autopilot envs build one`")
    assert build(config, "one", log=lambda line: None).built
    assert check(config, "one").ready
    after = env_dir(config, "one").resolve()
    assert after != before and not before.exists()  # switched whole; the old build removed
    assert imported(config, "one")["probe"] == "1.0"


def test_requirements_excluding_the_servers_dask_versions_are_refused(
    project: Project,
) -> None:
    project.requirements("pinned", "autopilot_probe==1.0", "distributed==2020.1.0")
    config = project.config("pinned")
    server = importlib.metadata.version("distributed")
    with pytest.raises(EnvironmentBuildError) as refused:
        build(config, "pinned", log=lambda line: None)
    message = str(refused.value)
    assert "environment 'pinned' failed to build" in message
    assert f"envs/pinned.txt line 4 asks for 'distributed==2020.1.0', but the server runs " \
           f"distributed {server}" in message
    status = check(config, "pinned")
    assert status.state is EnvState.FAILED and "distributed==2020.1.0" in (status.problem or "")
    assert "autopilot envs build pinned" in (status.problem or "")
    assert not env_python(config, "pinned").exists()


def test_a_python_that_is_not_installed_is_named(project: Project) -> None:
    project.requirements("future", "autopilot_probe==1.0")
    config = project.config("future")
    config = config.model_copy(update={"environments": {
        "future": config.environments["future"].model_copy(update={"python": "3.99"})}})
    with pytest.raises(EnvironmentBuildError, match=r"python3\.99, which is not on PATH"):
        build(config, "future", log=lambda line: None)
    assert "python3.99" in (check(config, "future").problem or "")


def test_not_built_and_missing_requirements_say_what_to_run(project: Project) -> None:
    project.requirements("later", "autopilot_probe==1.0")
    config = project.config("later", "nofile")
    assert check(config, "later").problem == ("environment 'later' is not built: run "
                                              "`autopilot envs build later`")
    missing = check(config, "nofile")
    assert missing.state is EnvState.FAILED
    assert "envs/nofile.txt does not exist" in (missing.problem or "")
    assert describe(config, "later")["state"] == "missing"
    with pytest.raises(ConfigError, match="no environment named 'other'"):
        check(config, "other")


def test_describe_names_its_python_packages_and_size(built: tuple[Project, AppConfig]) -> None:
    _, config = built
    info = describe(config, "two")
    assert info["state"] == "ready" and info["python"] == ".".join(map(str, sys.version_info[:3]))
    assert info["size_bytes"] > 0 and info["requirements"] == "envs/two.txt"
    assert info["packages"]["pandas"] == {"version": importlib.metadata.version("pandas"),
                                          "from": "server"}
