"""Turning database rows into the ledger's dataclasses, and a log line into its row."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row

from numerai_autopilot.errors import LedgerError
from numerai_autopilot.ledger.states import RunState
from numerai_autopilot.ledger.records import LOG_LEVELS, LogLine, Run, StageRecord

MAX_LOG_MESSAGE = 16_384


def run_from_row(row: Row[Any]) -> Run:
    m = row._mapping
    return Run(
        id=m["id"],
        model_name=m["model_name"],
        model_id=m["model_id"],
        tournament=m["tournament"],
        round_number=m["round_number"],
        trigger_id=m["trigger_id"],
        data_version=m["data_version"],
        is_test=bool(m["is_test"]),
        source=m["source"],
        state=RunState(m["state"]),
        attempts=m["attempts"],
        error=m["error"],
        submission_id=m["submission_id"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        owner=m["owner"],
        lease_until=m["lease_until"],
        close_time=m["close_time"],
        detail=dict(m["detail"] or {}),
        resubmit=bool(m["resubmit"]),
    )


def stage_from_row(row: Row[Any]) -> StageRecord:
    m = row._mapping
    return StageRecord(
        state=RunState(m["state"]),
        attempt=m["attempt"],
        started_at=m["started_at"],
        ended_at=m["ended_at"],
        error=m["error"],
        outcome=m["outcome"],
    )


def log_from_row(row: Row[Any]) -> LogLine:
    m = row._mapping
    return LogLine(
        id=m["id"], run_id=m["run_id"], at=m["at"], level=m["level"], message=m["message"]
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
