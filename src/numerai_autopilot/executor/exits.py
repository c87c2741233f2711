"""Why a worker process ended, as its nanny saw it, passed on to the executor.

    report_exits(lambda event: scheduler.log_event(EXIT_TOPIC, event))   # in a nannies' process

Dask's nanny says how its worker process ended (exit code or signal) only in its own log, at
INFO ("Worker process 123 exited with status 3", distributed/nanny.py). `report_exits` turns
those lines into `{"pid", "reason"}` events; the local cluster's process and an environment's
workers send them to the scheduler on `EXIT_TOPIC`, where the executor reads them to say why a
model's worker died. The nannies' warnings and errors go on to the root handlers as before.
"""

from __future__ import annotations

import logging
import re
import signal
from collections.abc import Callable
from typing import Any

EXIT_TOPIC = "numerai-autopilot-worker-exit"


def report_exits(report: Callable[[dict[str, Any]], Any]) -> None:
    """Call `report({"pid": int, "reason": str})` for each worker process that a nanny of
    this process saw end (`reason`: "exit code 3", "killed by SIGKILL")."""
    nanny = logging.getLogger("distributed.nanny")
    nanny.setLevel(logging.INFO)  # the exit lines are INFO; the handler shows only warnings
    nanny.propagate = False
    nanny.handlers[:] = [_NannyExits(report)]


class _NannyExits(logging.Handler):
    """Passes the nannies' exit lines on to `report`, and their warnings and errors on to
    the root handlers."""

    _pattern = re.compile(r"Worker process (\d+) (exited with status (-?\d+)|"
                          r"was killed by signal (\d+)|was killed by unknown signal)")

    def __init__(self, report: Callable[[dict[str, Any]], Any]) -> None:
        super().__init__(level=logging.INFO)
        self._report = report

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            for handler in logging.getLogger().handlers:
                handler.handle(record)
        match = self._pattern.search(record.getMessage())
        if match is None:
            return
        if match.group(3) is not None:
            reason = f"exit code {match.group(3)}"
        elif match.group(4) is not None:
            number = int(match.group(4))
            try:
                reason = f"killed by {signal.Signals(number).name}"
            except ValueError:
                reason = f"killed by signal {number}"
        else:
            reason = "killed by a signal"
        self._report({"pid": int(match.group(1)), "reason": reason})
