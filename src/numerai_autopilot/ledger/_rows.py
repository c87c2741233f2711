"""Turning database rows into the ledger's dataclasses, and a log line into its row."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row

from numerai_autopilot.errors import LedgerError
from numerai_autopilot.ledger.records import LOG_LEVELS, LogLine, Run, StageRecord
from numerai_autopilot.ledger.states import RunState

MAX_LOG_MESSAGE = 16_384  # characters of a log line kept; the rest is cut


def run_from_row(row: Row[Any]) -> Run:
    """A `runs` row as a Run."""
    values = row._mapping
    return Run(
        id=values["id"],
        model_name=values["model_name"],
        model_id=values["model_id"],
        tournament=values["tournament"],
        round_number=values["round_number"],
        trigger_id=values["trigger_id"],
        data_version=values["data_version"],
        is_test=bool(values["is_test"]),
        source=values["source"],
        state=RunState(values["state"]),
        attempts=values["attempts"],
        error=values["error"],
        submission_id=values["submission_id"],
        created_at=values["created_at"],
        updated_at=values["updated_at"],
        owner=values["owner"],
        lease_until=values["lease_until"],
        close_time=values["close_time"],
        detail=dict(values["detail"] or {}),
        resubmit=bool(values["resubmit"]),
    )


def stage_from_row(row: Row[Any]) -> StageRecord:
    """A `run_stages` row as a StageRecord."""
    values = row._mapping
    return StageRecord(
        state=RunState(values["state"]),
        attempt=values["attempt"],
        started_at=values["started_at"],
        ended_at=values["ended_at"],
        error=values["error"],
        outcome=values["outcome"],
    )


def log_from_row(row: Row[Any]) -> LogLine:
    """A `run_logs` row as a LogLine."""
    values = row._mapping
    return LogLine(
        id=values["id"], run_id=values["run_id"], at=values["at"], level=values["level"],
        message=values["message"],
    )


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
