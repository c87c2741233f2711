"""The package as the Dockerfile installs it: the wheel into a fresh virtualenv with the pins
of constraints.txt, then `autopilot serve` from there answers /healthz and a round's webhook."""

from __future__ import annotations

import subprocess
import sys
import time
import venv
from pathlib import Path

import httpx
import pytest
from ops_harness import start_server, write_project

from numerai_autopilot.sandbox.testing import RunningSandbox

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str | Path, cwd: Path | None = None) -> None:
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_wheel_in_a_fresh_virtualenv_serves_a_round(tmp_path: Path, sandbox: RunningSandbox) -> None:
    dist = tmp_path / "dist"
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", str(ROOT), "-w", dist)
    wheel = next(dist.glob("numerai_autopilot-*.whl"))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "-c", ROOT / "constraints.txt", wheel)
    autopilot = str(env_dir / "bin" / "autopilot")

    project = write_project(tmp_path / "project", sandbox, {"alpha": "good"})
    server = start_server(project, executable=autopilot)  # waits for /healthz: executor ready
    try:
        health = httpx.get(f"{server.url}/healthz").json()
        assert health["status"] == "ok"
        registered = project.cli("register", "--base-url", server.url, executable=autopilot)
        assert registered.returncode == 0, registered.stderr
        opened = sandbox.open_round()  # fires the registered webhook, as Numerai does
        deadline = time.monotonic() + 180
        while not [s for s in sandbox.submissions() if s["round_number"] == opened["number"]]:
            assert time.monotonic() < deadline, server.log_text()
            time.sleep(0.5)
        [submission] = sandbox.submissions()
        assert submission["model_id"] == sandbox.models["alpha"] and submission["trigger_id"]
        status = project.cli("status", "--server", server.url, executable=autopilot)
        assert status.returncode == 0 and "submitted" in status.stdout, status.stderr
    finally:
        server.stop()
    assert python.resolve() != Path(sys.executable).resolve()
    project.assert_no_secret_printed()
