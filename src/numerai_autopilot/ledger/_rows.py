"""Turning database rows into the ledger's dataclasses, and a log line into its row."""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import Row

from numerai_autopilot.errors import LedgerError
from numerai_autopilot.ledger.records import LOG_LEVELS, LogLine, Run, StageRecord
from numerai_autopilot.ledger.states import RunState

MAX_LOG_MESSAGE = 16_384  # characters of a log line kept; the rest is cut


def run_from_row(row: Row[Any]) -> Run:
    """A `runs` row as a Run."""
    values = _columns(Run, row)
    return Run(**values | {
        "state": RunState(values["state"]),
        "is_test": bool(values["is_test"]),
        "resubmit": bool(values["resubmit"]),
        "detail": dict(values["detail"] or {}),
    })


def stage_from_row(row: Row[Any]) -> StageRecord:
    """A `run_stages` row as a StageRecord."""
    values = _columns(StageRecord, row)
    return StageRecord(**values | {"state": RunState(values["state"])})


def log_from_row(row: Row[Any]) -> LogLine:
    """A `run_logs` row as a LogLine."""
    return LogLine(**_columns(LogLine, row))


def _columns(record: type[Any], row: Row[Any]) -> dict[str, Any]:
    """The row's values of the columns named like `record`'s fields."""
    return {field.name: row._mapping[field.name] for field in dataclasses.fields(record)}


def log_row(run_id: str, level: str, message: str) -> dict[str, str]:
    """A run_logs row's checked values (the level known, the message bounded)."""
    level = level.lower()
    if level not in LOG_LEVELS:
        raise LedgerError(
            f"log level {level!r} for run {run_id} is not one of {', '.join(sorted(LOG_LEVELS))}"
        )
    if len(message) > MAX_LOG_MESSAGE:
        message = message[:MAX_LOG_MESSAGE] + " ... (truncated)"
    return {"run_id": run_id, "level": level, "message": message}
