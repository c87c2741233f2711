"""The log set-up, in a process of its own (it replaces the root logger's handlers)."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import logging
from distributed.comm.core import CommClosedError
from numerai_autopilot.logs import setup_logging

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


CLOSING = """
import logging, sys
from numerai_autopilot.logs import setup_logging

setup_logging(sys.argv[1])
logging.getLogger("distributed.worker.state_machine").warning(
    "Async instruction for <Task cancelled name='execute(x)'> ended with CancelledError")
logging.getLogger("distributed.nanny").warning(
    "Worker process still alive after 4.0 seconds, killing")
logging.getLogger("distributed.nanny").warning("Restarting worker")
"""


def test_a_worker_closed_while_its_task_runs_is_info_not_a_warning() -> None:
    said = {}
    for level in ("INFO", "WARNING"):
        done = subprocess.run([sys.executable, "-c", CLOSING, level], capture_output=True,
                              text=True, timeout=60, check=True)
        said[level] = [line.split(" ", 2)[1:] for line in done.stderr.splitlines()]
    assert [level for level, _ in said["INFO"]] == ["INFO", "INFO", "WARNING"], said
    assert said["WARNING"] == [["WARNING", "distributed.nanny: Restarting worker"]], said
