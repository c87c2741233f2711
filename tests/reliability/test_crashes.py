"""SIGKILL of the server (its whole process group) at each stage of a round, then a restart;
SIGKILL of one Dask worker mid-predict.

After the restart every run ends submitted exactly once (Numerai's submissions are checked
before an upload is repeated) and nothing is left unfinished in the ledger.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from reliability_harness import (
    Capture,
    Servers,
    assert_no_put_then_create,
    assert_no_secrets,
    assert_submitted_once,
    open_round,
    predictor,
    register_webhooks,
    sandbox_env,
    secret_values,
    wait_final,
    wait_until,
    write_config,
)

from numerai_autopilot.ledger import Ledger, RunState
from numerai_autopilot.sandbox.testing import RunningSandbox

MODELS = ("alpha", "beta")


def _in_state(ledger: Ledger, state: RunState, count: int = len(MODELS)) -> Callable[[], bool]:
    return lambda: len([r for r in ledger.runs() if r.state is state]) >= count


def _stage(sandbox: RunningSandbox, ledger: Ledger, stage: str) -> tuple[dict[str, Any], Callable[[], Any]]:
    """The faults that hold the round at `stage`, and the condition to kill on."""
    if stage == "downloading":
        # ~8 s per live file: killed with bytes on disk, resumed from them after the restart
        def some_bytes_in() -> bool:
            if not _in_state(ledger, RunState.DOWNLOADING)():
                return False
            started = [datetime.fromisoformat(d["started_at"]) for d in sandbox.downloads()
                       if d["filename"].endswith("live.parquet")]
            return bool(started) and datetime.now(UTC) - started[0] > timedelta(seconds=1.5)

        return {"bandwidth_bytes_per_s": 8_000}, some_bytes_in
    if stage == "predicting":
        return {}, _in_state(ledger, RunState.PREDICTING)
    if stage == "between-put-and-create":
        # every create_submission is dropped unanswered: kill once every model's PUT is in
        # and as many creates were dropped. Per model, not in total: create_submission
        # retries itself, so one model alone can use up the count before the other's PUT.
        def every_put_in() -> bool:
            put = {u["model_id"] for u in sandbox.uploads() if u["status_code"] == 200}
            dropped = [f for f in sandbox.sandbox.faults.view()["injected"]
                       if f["operation"] == "create_submission"]
            return len(put) >= len(MODELS) and len(dropped) >= len(MODELS)

        return {"operations": {"create_submission": {"drop_rate": 1.0}}}, every_put_in
    if stage == "after-create-before-ledger":
        # the submission is created, its answer held back: kill once Numerai has them
        return ({"operations": {"create_submission": {"answer_delay_ms": 20_000}}},
                lambda: len(sandbox.submissions()) >= len(MODELS))
    raise AssertionError(stage)


@pytest.mark.slow
@pytest.mark.parametrize(
    "stage", ["downloading", "predicting", "between-put-and-create", "after-create-before-ledger"]
)
def test_server_killed_during_a_stage_resumes_and_submits_once(
    tmp_path: Path, sandbox: RunningSandbox, servers: Servers, stage: str
) -> None:
    slow = stage == "predicting"
    config = write_config(tmp_path, sandbox,
                          {name: predictor("slow" if slow else "good") for name in MODELS})
    env = sandbox_env(sandbox, REL_SLOW_S="3")
    log = tmp_path / "server.log"
    first = servers.start(config, env, log)
    register_webhooks(sandbox, first.url, MODELS)
    ledger = Ledger.from_url(f"sqlite:///{tmp_path / 'ledger.db'}")
    faults, kill_now = _stage(sandbox, ledger, stage)
    sandbox.set_faults(**faults)
    open_round(sandbox)
    wait_until(kill_now, 60, f"the round to reach {stage}")
    first.kill()
    sandbox.clear_faults()
    interrupted = {r.id: r.state for r in ledger.runs()}
    assert all(not state.is_final for state in interrupted.values()), interrupted

    second = servers.start(config, env, log)
    runs = wait_final(ledger, len(MODELS), timeout=90)
    assert_submitted_once(sandbox, ledger, runs)
    assert_no_put_then_create(sandbox)
    for run in runs:
        assert run.attempts == 2, (run.model_name, run.attempts)
        assert any(s.outcome == "abandoned" for s in ledger.stages(run.id))
    if stage == "downloading":
        live = [d for d in sandbox.downloads() if d["filename"].endswith("live.parquet")]
        assert any(d["range_start"] > 0 and d["completed"] for d in live), live
    if stage == "between-put-and-create":
        assert len([u for u in sandbox.uploads() if u["status_code"] == 200]) == 2 * len(MODELS)
    if stage == "after-create-before-ledger":
        # found at Numerai by trigger id: no second upload
        assert len([u for u in sandbox.uploads() if u["status_code"] == 200]) == len(MODELS)
        for run in runs:
            messages = [line.message for line in ledger.logs(run.id)]
            assert any("already has submission" in m for m in messages), messages

    capture = Capture()
    capture.add_server(second)
    capture.add_api(second.url)
    capture.add_ledger(ledger)
    if stage == "predicting":  # the CLI takes seconds to start: once is enough
        capture.add_cli(config, env)
    assert_no_secrets(capture, secret_values(sandbox))
    ledger.close()


def test_dask_worker_killed_mid_predict_retries_only_that_run(
    tmp_path: Path, sandbox: RunningSandbox, servers: Servers
) -> None:
    models = {"alpha": predictor("dies_once"), "beta": predictor("good"), "gamma": predictor("good")}
    config = write_config(tmp_path, sandbox, models)
    pid_file, marker = tmp_path / "worker.pid", tmp_path / "marker"
    env = sandbox_env(sandbox, REL_PID_FILE=str(pid_file), REL_MARKER=str(marker))
    server = servers.start(config, env, tmp_path / "server.log")
    register_webhooks(sandbox, server.url, models)
    ledger = Ledger.from_url(f"sqlite:///{tmp_path / 'ledger.db'}")
    open_round(sandbox)
    wait_until(pid_file.exists, 60, "alpha's predictor to start")
    worker_pid = int(pid_file.read_text())
    assert worker_pid != server.pid
    marker.touch()
    # The worker's "started" event reaches the server in batched messages (worker, then
    # scheduler, a few ms each). Killed before it arrives, the task counts as never started
    # and gets another go in the same attempt (the executor's rule for innocent tasks), as
    # in `test_cluster_rounds._kill_worker_running`: let it arrive first.
    time.sleep(0.5)
    os.kill(worker_pid, signal.SIGKILL)

    runs = {r.model_name: r for r in wait_final(ledger, len(models), timeout=90)}
    assert_submitted_once(sandbox, ledger, list(runs.values()))
    assert runs["alpha"].attempts == 2
    assert runs["beta"].attempts == runs["gamma"].attempts == 1
    died = [s for s in ledger.stages(runs["alpha"].id) if s.outcome == RunState.QUEUED.value]
    assert died and died[0].error and "worker" in died[0].error.lower(), died
    assert server.proc.poll() is None, "the server must survive its worker's death"
    ledger.close()
