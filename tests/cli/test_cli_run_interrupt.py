"""Ctrl-C in `autopilot run` as a user presses it: the run stops now, not when its predictor
returns, and the ledger says it was interrupted. A real CLI process and its workers, the
sandbox over real HTTP, real SQLite."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from server_harness import make_config, sandbox_env

from numerai_autopilot.ledger import Ledger, RunState
from numerai_autopilot.sandbox.testing import RunningSandbox

pytestmark = pytest.mark.timeout(240)

SLOW = '''
import os
import time
from pathlib import Path


def predict(live_features):
    Path(os.environ["STARTED_MARKER"]).write_text(str(os.getpid()))
    time.sleep(600)
    return live_features.iloc[:, 0].rank(pct=True)
'''


def test_ctrl_c_stops_a_manual_run_at_once_and_records_it_interrupted(
    tmp_path: Path, sandbox: RunningSandbox
) -> None:
    (tmp_path / "slow.py").write_text(SLOW)
    marker = tmp_path / "started"
    config = make_config(tmp_path, sandbox, {"alpha": f"{tmp_path / 'slow.py'}:predict"})
    proc = subprocess.Popen(
        [sys.executable, "-m", "numerai_autopilot", "run", "alpha",
         "-c", str(tmp_path / "autopilot.toml")],
        cwd=tmp_path, env={**os.environ, "COLUMNS": "200", "STARTED_MARKER": str(marker),
                           **sandbox_env(sandbox)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists(), proc.communicate(timeout=30)
        worker = psutil.Process(int(marker.read_text()))
        # the predictor starts as the data is there, while the run's stage change commits
        with Ledger.from_url(config.ledger.url) as ledger:
            while ledger.runs()[0].state is not RunState.PREDICTING:
                assert time.monotonic() < deadline, ledger.runs()
                time.sleep(0.05)
        # Ctrl-C in the terminal: SIGINT to the whole process group, cluster and workers too
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    said = out + err
    assert proc.returncode == 130, said
    assert "Traceback" not in said and "distributed" not in said, said  # no Dask chatter
    assert said.rstrip().endswith("interrupted"), said
    worker.wait(timeout=30)  # its predictor's worker is gone too (TimeoutExpired if not)
    with Ledger.from_url(config.ledger.url) as ledger:
        [run] = ledger.runs()
    assert run.state is RunState.FAILED, run
    assert "interrupted (Ctrl-C) while predicting" in (run.error or ""), run.error
    assert "autopilot run alpha" in (run.error or "")
    assert sandbox.submissions() == []
