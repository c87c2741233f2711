"""Models in environments of their own, in real rounds (our server, the local Dask cluster,
environments built by `autopilot envs build` with real pip, the sandbox): two environments
holding two versions of one package each see their own in the same round; a Model Upload
pickle of a class only one environment has predicts there; a model whose environment failed
to build fails with the command to fix it while the others submit; a model that needs a
package its environment lacks is told which; the round's data is downloaded once; idle
environments' workers stop and start again for the next round."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from env_support import probe, probe_wheel, requirements
from health_models import play_round
from server_harness import StartServer, make_config, predictor

from numerai_autopilot.ledger import RunState
from numerai_autopilot.sandbox.settings import ModelSpec, SandboxSettings
from numerai_autopilot.sandbox.testing import RunningSandbox, running_sandbox

EXTRA = ("pick", "broke", "nolib")


@contextmanager
def env_sandbox(settings: SandboxSettings) -> Iterator[RunningSandbox]:
    """The test account with the Classic models `EXTRA` added."""
    extra = tuple(ModelSpec(name) for name in EXTRA)
    with running_sandbox(dataclasses.replace(settings, models=(*settings.models, *extra))) \
            as running:
        yield running


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "numerai_autopilot", *args],
                          capture_output=True, text=True, timeout=600, check=False)


def _live_downloads(sandbox: RunningSandbox, number: int) -> int:
    downloads = sandbox.downloads()
    return sum(1 for d in downloads
               if d["round_number"] == number and d["filename"].endswith("/live.parquet"))


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_each_model_runs_with_its_own_environments_libraries(
    sandbox_settings: SandboxSettings, start_server: StartServer, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wheels = tmp_path / "wheels"
    for version in ("1.0", "2.0"):
        probe_wheel(wheels, version)
    envs = {
        "v1": {"requirements": str(requirements(tmp_path / "envs/v1.txt", wheels,
                                                "autopilot-probe==1.0")), "idle_stop": "1s"},
        "v2": {"requirements": str(requirements(tmp_path / "envs/v2.txt", wheels,
                                                "autopilot-probe==2.0")), "idle_stop": "1s"},
        "broken": {"requirements": str(requirements(tmp_path / "envs/broken.txt", wheels,
                                                    "no-such-package-xyz==1.0"))},
    }
    seen = tmp_path / "seen"
    seen.mkdir()
    monkeypatch.setenv("PROBE_SEEN_DIR", str(seen))
    models: dict[str, str | dict[str, object]] = {
        "alpha": {"predictor": probe("probe_version"), "environment": "v1"},
        "beta": {"predictor": probe("probe_version"), "environment": "v2"},
        "gamma": predictor("good"),  # the service's own environment
        "pick": {"predictor": str(tmp_path / "probe_model.pkl"), "environment": "v2"},
        "broke": {"predictor": probe("probe_version"), "environment": "broken"},
        "nolib": probe("probe_version"),  # the service's environment has no autopilot_probe
    }
    with env_sandbox(sandbox_settings) as sandbox:
        make_config(tmp_path, sandbox, models, environments=envs)
        built = _cli("envs", "build", "-c", str(tmp_path / "autopilot.toml"))
        assert built.returncode == 1, built.stdout + built.stderr  # "broken" failed
        assert "no-such-package-xyz" in built.stdout + built.stderr
        v2_python = tmp_path / ".autopilot/envs/v2/bin/python"
        pickling = ("import cloudpickle, autopilot_probe, sys; "
                    "cloudpickle.dump(autopilot_probe.Model(), open(sys.argv[1], 'wb'))")
        subprocess.run([str(v2_python), "-c", pickling, str(tmp_path / "probe_model.pkl")],
                       check=True, timeout=120)

        server = start_server(models, against=sandbox, environments=envs)
        for name in models:
            sandbox.set_webhook(name, server.hook_url(name))
        runs = play_round(sandbox, server, len(models), timeout=300)
        number = runs["gamma"].round_number
        assert number is not None

        states = {name: run.state for name, run in runs.items()}
        assert all(states[name] is RunState.SUBMITTED
                   for name in ("alpha", "beta", "gamma", "pick")), states
        versions = {json.loads(p.read_text())["version"]: json.loads(p.read_text())["python"]
                    for p in seen.glob("*.json")}
        assert set(versions) == {"1.0", "2.0"}
        assert versions["1.0"].startswith(str(tmp_path / ".autopilot/envs/v1"))
        assert versions["2.0"].startswith(str(tmp_path / ".autopilot/envs/v2"))
        assert runs["broke"].state is RunState.FAILED
        assert "autopilot envs build broken" in (runs["broke"].error or "")
        assert runs["nolib"].state is RunState.FAILED
        assert "'autopilot_probe'" in (runs["nolib"].error or "")
        assert "environment" in (runs["nolib"].error or "")
        assert _live_downloads(sandbox, number) == 1

        executor = server.runtime.executor
        deadline = time.monotonic() + 30
        while executor.environments_running() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert executor.environments_running() == [], "idle environments' workers still run"
        for path in seen.glob("*.json"):
            path.unlink()
        again = play_round(sandbox, server, len(models), timeout=300)
        assert all(again[name].state is RunState.SUBMITTED
                   for name in ("alpha", "beta", "gamma", "pick"))
        assert {p.stem for p in seen.glob("*.json")} == {"1.0", "2.0"}
