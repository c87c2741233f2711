"""`autopilot serve --log-format json` as a user runs it (issue 25, item 3): a raising
predictor's message is logged once, every line of the server's output (uvicorn's, Dask's,
the local cluster's and its workers') is JSON, and Ctrl-C stops it without a traceback.
A real server process, the sandbox over real HTTP, real SQLite."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from pathlib import Path

import httpx
import pytest
from server_harness import SECRET, make_config, sandbox_env
from server_process import ServerProcess

from numerai_autopilot.config import webhook_url
from numerai_autopilot.ledger import Ledger, Run, RunState
from numerai_autopilot.sandbox.testing import RunningSandbox

pytestmark = pytest.mark.timeout(240)

BROKEN = '''
def _pick(frame):
    return frame.loc[:, ["column_the_model_expects"]]


def predict(live_features):
    return _pick(live_features)
'''


def test_a_raising_predictor_is_logged_once_every_line_is_json_and_ctrl_c_is_quiet(
    tmp_path: Path, sandbox: RunningSandbox
) -> None:
    (tmp_path / "broken.py").write_text(BROKEN)
    config = make_config(tmp_path, sandbox, {"alpha": f"{tmp_path / 'broken.py'}:predict"})
    server = ServerProcess(tmp_path / "autopilot.toml", sandbox_env(sandbox),
                           tmp_path / "server.log", args=("--log-format", "json")).ready()
    try:
        round_number = sandbox.state()["current_rounds"]["8"]["number"]
        answer = httpx.post(webhook_url(server.url, sandbox.models["alpha"], SECRET),
                            json={"roundNumber": round_number, "dataVersion": 1,
                                  "triggerId": str(uuid.uuid4())}, timeout=30)
        assert answer.status_code == 200, answer.text
        run_id = answer.json()["run_id"]
        with Ledger.from_url(config.ledger.url) as ledger:
            run = _final(ledger, run_id)
        assert run.state is RunState.FAILED and "column_the_model_expects" in (run.error or "")
        # Ctrl-C in the terminal: SIGINT to the whole process group, cluster and workers too
        os.killpg(server.pid, signal.SIGINT)
        assert server.proc.wait(timeout=60) == 130, server.log_text()[-3000:]
    finally:
        server.stop()

    text = server.log_path.read_text()
    lines = [line for line in text.splitlines() if line.strip()]
    entries = []
    for line in lines:
        try:
            entries.append(json.loads(line))
        except ValueError:
            pytest.fail(f"not a JSON line: {line[:300]!r}\n{text[-3000:]}")
    said = [e for e in entries if "column_the_model_expects" in e["message"]]
    assert len(said) == 1, said  # once: not Dask's "Compute Failed", not a second copy
    [error] = said
    assert error["severity"] == "ERROR" and "predictor raised KeyError" in error["message"]
    assert error["message"].index("in predict") < error["message"].index("in _pick")
    assert "site-packages" not in error["message"]  # library frames folded into one line
    assert error["logging.googleapis.com/labels"]["run"] == run_id
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text[-3000:]
    assert not [e for e in entries if e["severity"] in {"ERROR", "CRITICAL"} and e is not error]
    assert entries[-1]["message"].startswith("Finished server process")


def _final(ledger: Ledger, run_id: str, timeout: float = 120.0) -> Run:
    """The run once it is final (submitted, failed, skipped, held or dry-run)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = ledger.get(run_id)
        if run is not None and run.state.is_final:
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} not final after {timeout} s")

