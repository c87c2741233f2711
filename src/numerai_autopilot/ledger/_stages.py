"""A run's stages: checking a state change, and timing the stage it closes and opens.

Each stage row times one state of one attempt; a state change closes the open row (its
outcome is the state entered) and opens the next, in the caller's transaction.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, and_, func, insert, select, update

from numerai_autopilot.errors import LedgerError
from numerai_autopilot.ledger.schema import run_stages
from numerai_autopilot.ledger.states import RunState, can_transition, transition_hint
from numerai_autopilot.ledger.types import Run


def check_advance(
    run: Run,
    state: RunState,
    owner: str | None,
    error: str | None,
    submission_id: str | None,
) -> None:
    name = f"run {run.id} (model {run.model_name!r})"
    if owner is not None and run.owner != owner:
        raise LedgerError(
            f"{name} is held by {run.owner or 'nobody'}, not {owner}: the lease was lost "
            "(renew it more often than lease_s); stop working on this run"
        )
    if not can_transition(run.state, state):
        raise LedgerError(
            f"{name} cannot move from {run.state.value} to {state.value}: "
            f"{transition_hint(run.state, state)}"
        )
    if state is RunState.SUBMITTED and not (submission_id or run.submission_id):
        raise LedgerError(
            f"{name}: pass the submission id Numerai returned when marking it submitted"
        )
    if state is RunState.FAILED and not error:
        raise LedgerError(f"{name}: say why it failed (error=...) so a person can act")

def record_stage(
    conn: Connection, run: Run, state: RunState, error: str | None, now: datetime
) -> None:
    open_stage = and_(run_stages.c.run_id == run.id, run_stages.c.ended_at.is_(None))
    if state is run.state:
        resumed = conn.scalar(
            select(func.count())
            .select_from(run_stages)
            .where(open_stage, run_stages.c.attempt == run.attempts)
        )
        if resumed:
            return  # already timing this stage for this attempt
    ending_error = (
        error if state in (RunState.FAILED, RunState.SKIPPED, RunState.QUEUED) else None
    )
    conn.execute(
        update(run_stages)
        .where(open_stage)
        .values(ended_at=now, outcome=state.value, error=ending_error)
    )
    if not state.is_final:
        conn.execute(
            insert(run_stages).values(
                run_id=run.id, state=state.value, attempt=run.attempts, started_at=now
            )
        )
