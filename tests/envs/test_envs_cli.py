"""`autopilot envs build` and `envs list` as a user runs them: a broken requirements file
fails with a clear error, exit 1, and the other environment still builds; `doctor` reports
each environment; a failed rebuild leaves the environment in place. Real processes, real pip from local wheels."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from envs_project import Project

from numerai_autopilot.cli.doctor import Doctor
from numerai_autopilot.envs import EnvState, build, check, env_python
from numerai_autopilot.errors import EnvironmentBuildError


def autopilot(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "numerai_autopilot", *args], cwd=cwd,
                          env={**os.environ, "COLUMNS": "200"}, capture_output=True, text=True,
                          timeout=240, check=False)


def test_a_broken_environment_fails_clearly_and_the_others_build(
    project: Project,
) -> None:
    project.requirements("broken", "autopilot-no-such-package==1.0")
    project.requirements("fine", "autopilot_probe==2.0")
    config = project.config("broken", "fine")

    done = autopilot("envs", "build", "-c", "autopilot.toml", cwd=project.folder)
    assert done.returncode == 1, done.stderr
    assert "environment 'broken' failed to build: installing envs/broken.txt (pip) failed (pip exited with 1)" \
        in done.stderr
    assert "autopilot-no-such-package" in done.stderr
    assert "1 of 2 environments failed: broken" in done.stderr
    assert "fine: built" in done.stdout

    broken = check(config, "broken")
    assert broken.state is EnvState.FAILED
    assert "autopilot-no-such-package" in (broken.problem or "")
    assert (broken.problem or "").endswith("fix envs/broken.txt; then run "
                                           "`autopilot envs build broken`")
    assert check(config, "fine").ready

    listed = autopilot("envs", "list", "--json", "-c", "autopilot.toml", cwd=project.folder)
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["fine"]["state"] == "ready" and rows["fine"]["size_bytes"] > 0
    assert rows["broken"]["state"] == "failed" and rows["broken"]["python"] is None
    table = autopilot("envs", "list", "-c", "autopilot.toml", cwd=project.folder)
    assert table.returncode == 0 and "environment 'broken' failed to build" in table.stdout

    again = autopilot("envs", "build", "fine", "-c", "autopilot.toml", cwd=project.folder)
    assert again.returncode == 0 and "fine: up to date" in again.stdout

    doctor = Doctor(config, base_url=None)
    doctor._environments()
    assert not doctor.ok

    # A failed rebuild leaves the built environment in place, and says it failed.
    python = env_python(config, "fine").resolve()
    project.requirements("fine", "autopilot_probe==2.0", "autopilot-no-such-package==2.0")
    with pytest.raises(EnvironmentBuildError):
        build(config, "fine", log=lambda line: None)
    assert env_python(config, "fine").resolve() == python and python.exists()
    assert check(config, "fine").state is EnvState.FAILED


def test_building_an_unknown_environment_is_a_config_error(project: Project) -> None:
    project.requirements("fine", "autopilot_probe==2.0")
    project.config("fine")
    done = autopilot("envs", "build", "nope", "-c", "autopilot.toml", cwd=project.folder)
    assert done.returncode == 2
    assert "no environment named 'nope' (configured: fine)" in done.stderr
