"""Log set-up: readable lines by default, Cloud Logging's structured JSON with `json`.

In JSON mode each line carries `severity`, `message`, `time`, and `logging.googleapis.com/labels`
with the run, model and round when the record has them (pass `extra={"run": ..., ...}`).
"""

from __future__ import annotations

import json
import logging
import os
from contextvars import ContextVar
from datetime import UTC, datetime

_LABELS = ("run", "model", "round")
# The Cloud Trace of the request being handled (`projects/P/traces/ID`), set by the server's
# middleware from `X-Cloud-Trace-Context`, so Cloud Logging groups a request's lines.
current_trace: ContextVar[str | None] = ContextVar("current_trace", default=None)


def cloud_trace(header: bytes) -> str | None:
    """The trace of an `X-Cloud-Trace-Context: TRACE_ID/SPAN_ID;o=1` header (Cloud Run sends
    it): `projects/P/traces/TRACE_ID` with GOOGLE_CLOUD_PROJECT set (the deploy command sets
    it), else the bare id; None without a usable id."""
    trace_id = header.decode("latin-1").split("/", 1)[0].strip()
    if not trace_id.isalnum():
        return None
    project = os.environ.get("GOOGLE_CLOUD_PROJECT")
    return f"projects/{project}/traces/{trace_id}" if project else trace_id


class CloudLoggingFormatter(logging.Formatter):
    """One JSON object per line, as Cloud Run's log agent parses it."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "severity": record.levelname if record.levelname != "WARN" else "WARNING",
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
        }
        labels = {k: str(getattr(record, k)) for k in _LABELS if getattr(record, k, None) is not None}
        if labels:
            entry["logging.googleapis.com/labels"] = labels
        trace = getattr(record, "trace", None) or current_trace.get()
        if trace:
            entry["logging.googleapis.com/trace"] = trace
        if record.exc_info:
            entry["message"] = f"{entry['message']}\n{self.formatException(record.exc_info)}"
        return json.dumps(entry, default=str)


class _HeartbeatFailures(logging.Filter):
    """Dask's worker logs a failed heartbeat as an error with a traceback, then carries on and
    beats again (dask/distributed#7163); at shutdown the beat races the closing connections
    (NVIDIA-NeMo/Curator#9). Such a record becomes one warning line naming the error."""

    def filter(self, record: logging.LogRecord) -> bool:
        if (record.name == "distributed.worker" and record.exc_info
                and str(record.msg).startswith("Failed to communicate with scheduler during "
                                               "heartbeat")):
            error = record.exc_info[1]
            record.msg = (f"a heartbeat to the scheduler failed ({type(error).__name__}: "
                          f"{error}); the worker beats again unless it is stopping")
            record.args = None
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


class _ClosingWorkers(logging.Filter):
    """Dask logs a worker closed while its task runs (Ctrl-C, a shutdown, a timeout's
    restart) as two warnings: the task's cancellation, which happens only in `Worker.close()`
    (distributed/worker_state_machine.py), and its nanny killing it once the task kept it
    alive past the close's wait (distributed/nanny.py). Both are what stopping means: they
    become info lines, shown only where info is."""

    _CLOSING = (("distributed.worker.state_machine", "Async instruction for "),
                ("distributed.nanny", "Worker process still alive after "))

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING and any(
                record.name == name and str(record.msg).startswith(start)
                for name, start in self._CLOSING):
            record.levelno, record.levelname = logging.INFO, "INFO"
            return logging.getLogger().isEnabledFor(logging.INFO)
        return True


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Log to stderr at `level`, as readable lines (`text`) or Cloud Logging's JSON (`json`);
    Dask's loggers included. Processes this one starts (the cluster's, its workers) repeat it
    with `logging_setup()`."""
    global _setup
    # Dask configures its own loggers when imported (here and in worker processes, which
    # inherit the environment): keep its chatter at warnings unless asked otherwise.
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(CloudLoggingFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        )
    handler.addFilter(_HeartbeatFailures())
    handler.addFilter(_ClosingWorkers())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "distributed", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    _setup = (level, fmt)
    adopt_dask_loggers()


def logging_setup() -> tuple[str, str]:
    """The `(level, format)` this process's logging was set up with."""
    return _setup


def adopt_dask_loggers() -> None:
    """Send Dask's log records through the root handler (one format for every line): Dask
    gives its loggers handlers of their own when it is imported, possibly after
    `setup_logging`, so this is called again once it is."""
    for name in ("distributed", "dask"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True


_setup: tuple[str, str] = ("INFO", "text")
