"""A server killed mid-run (SIGKILL, with its workers) resumes on restart, without duplicates."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_harness import SECRET, make_config, predictor, sandbox_env
from server_process import ServerProcess

from numerai_autopilot.config import webhook_url
from numerai_autopilot.ledger import Ledger, RunState
from numerai_autopilot.sandbox.testing import RunningSandbox


@pytest.fixture
def processes() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for proc in started:
        proc.stop()


def wait_for(ledger: Ledger, run_id: str, states: set[RunState], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = ledger.get(run_id)
        if run is not None and run.state in states:
            return run
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} never reached {states}: {ledger.get(run_id)}")


@pytest.mark.parametrize("kill_in", [RunState.PREDICTING, RunState.QUEUED])
def test_killed_server_resumes_its_runs_without_duplicates(
    tmp_path: Path, sandbox: RunningSandbox, processes: list[ServerProcess], kill_in: RunState
) -> None:
    config = make_config(tmp_path, sandbox, {"alpha": predictor("slow"), "beta": predictor("good")},
                         run_lease="2s")
    config_path = tmp_path / "autopilot.toml"
    first = ServerProcess(config_path, sandbox_env(sandbox), tmp_path / "server.log").ready()
    processes.append(first)
    round_number = sandbox.state()["current_rounds"]["8"]["number"]
    trigger = str(uuid.uuid4())
    model_id = sandbox.models["alpha"]
    answer = httpx.post(webhook_url(first.url, model_id, SECRET),
                        json={"roundNumber": round_number, "dataVersion": 1, "triggerId": trigger})
    assert answer.status_code == 200
    ledger = Ledger.from_url(config.ledger.url)
    run_id = answer.json()["run_id"]
    if kill_in is RunState.PREDICTING:
        wait_for(ledger, run_id, {RunState.PREDICTING})
    first.kill()  # the whole process group: server and Dask workers

    second = ServerProcess(config_path, sandbox_env(sandbox), tmp_path / "server.log").ready()
    processes.append(second)
    # The same webhook again (Numerai may retry): still one run.
    again = httpx.post(webhook_url(second.url, model_id, SECRET),
                       json={"roundNumber": round_number, "dataVersion": 1, "triggerId": trigger})
    assert again.json()["run_id"] == run_id and again.json()["created"] is False
    run = wait_for(ledger, run_id, {RunState.SUBMITTED, RunState.FAILED}, timeout=90)
    assert run.state is RunState.SUBMITTED, run.error
    subs = [s for s in sandbox.submissions() if s["trigger_id"] == trigger]
    assert len(subs) == 1 and subs[0]["id"] == run.submission_id
    assert [r.state for r in ledger.unfinished()] == []
    if kill_in is RunState.PREDICTING:
        assert run.attempts == 2
        assert any(s.outcome == "abandoned" for s in ledger.stages(run_id))
