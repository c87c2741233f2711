"""SIGTERM (what Cloud Run sends 10 s before SIGKILL) in the middle of a prediction: the server
claims nothing more, leaves the run resumable with its lease released, and exits within the
10 s; a new server on the same ledger resumes the run and submits it once."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest
from reliability_harness import (
    AUTH,
    Capture,
    Servers,
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

from numerai_autopilot.ledger import Ledger, Run, RunState
from numerai_autopilot.sandbox.testing import RunningSandbox

# Cloud Run's grace between SIGTERM and SIGKILL
# (https://cloud.google.com/run/docs/container-contract).
GRACE_S = 10


def _keep_busy_requests(url: str) -> float:
    metrics = httpx.get(f"{url}/metrics", headers=AUTH, timeout=10).text
    line = next(m for m in metrics.splitlines() if m.startswith("autopilot_keep_busy_requests "))
    return float(line.split()[1])


@pytest.mark.slow
@pytest.mark.timeout(300)  # two servers start
def test_sigterm_mid_predict_leaves_the_run_resumable_and_it_is_submitted_once(
    tmp_path: Path, sandbox: RunningSandbox, servers: Servers
) -> None:
    config = write_config(tmp_path, sandbox, {"alpha": predictor("slow")},
                          server={"keep_busy": "on", "run_lease": "60s"})
    log = tmp_path / "server.log"
    first = servers.start(config, sandbox_env(sandbox, REL_SLOW_S="60"), log)
    register_webhooks(sandbox, first.url, ["alpha"])
    ledger = Ledger.from_url(f"sqlite:///{tmp_path / 'ledger.db'}")
    open_round(sandbox)

    def predicting() -> Run | None:
        runs = ledger.runs()
        return runs[0] if runs and runs[0].state is RunState.PREDICTING else None

    run = wait_until(predicting, 60, "the run to predict")
    # the keep-busy request the server holds to itself while the run is unfinished
    wait_until(lambda: _keep_busy_requests(first.url) == 1, 30, "a held keep-busy request")

    # the server process alone (its Dask workers are its own to stop), as a container's
    # runtime signals its main process
    os.kill(first.pid, signal.SIGTERM)
    try:
        first.proc.wait(timeout=GRACE_S)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"still running {GRACE_S} s after SIGTERM:\n{first.log_text()}") from None

    left = ledger.get(run.id)
    assert left is not None and left.state is RunState.PREDICTING, left  # not failed
    assert left.owner is None and left.lease_until is None  # released: no lease to wait out
    assert sandbox.submissions() == []
    text = first.log_text()
    steps = ["stopping: claiming no more runs", "released them for resuming",
             "stopped: no run in flight, the ledger's writes committed"]
    assert all(step in text for step in steps), text
    assert [text.index(step) for step in steps] == sorted(text.index(step) for step in steps)

    second = servers.start(config, sandbox_env(sandbox, REL_SLOW_S="0"), log)
    runs = wait_final(ledger, 1, timeout=90)
    assert_submitted_once(sandbox, ledger, runs)  # one submission for the trigger id
    assert runs[0].id == run.id and runs[0].attempts == 2
    assert any(s.outcome == "abandoned" for s in ledger.stages(run.id))

    capture = Capture()
    capture.add_server(second)
    capture.add_ledger(ledger)
    assert_no_secrets(capture, secret_values(sandbox))
    ledger.close()
