"""The log set-up, in a process of its own (it replaces the root logger's handlers)."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import logging
from distributed.comm.core import CommClosedError
from numerai_autopilot.observe.logs import setup_logging

setup_logging("INFO", "json")
worker = logging.getLogger("distributed.worker")
for message in ("Failed to communicate with scheduler during heartbeat.", "Compute Failed"):
    try:
        raise CommClosedError("in <TCP (closed) ConnectionPool.heartbeat_worker>: Stream is closed")
    except CommClosedError:
        worker.exception(message)
"""


def test_a_failed_dask_heartbeat_is_one_warning_line_and_other_errors_keep_their_traceback(
) -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=60, check=True)
    heartbeat, other = (json.loads(line) for line in done.stderr.splitlines())
    assert heartbeat["severity"] == "WARNING", heartbeat
    assert heartbeat["message"] == (
        "a heartbeat to the scheduler failed (CommClosedError: in <TCP (closed) "
        "ConnectionPool.heartbeat_worker>: Stream is closed); the worker beats again unless "
        "it is stopping")
    assert other["severity"] == "ERROR" and "Traceback" in other["message"], other
