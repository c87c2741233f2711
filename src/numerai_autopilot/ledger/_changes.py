"""State changes in the caller's transaction, one after another.

A change reads its run, checks the move (`check_advance`), closes the open stage row (its
outcome is the state entered), opens the next (a `via` state is opened and closed on the
way), appends its log line and updates the run (its round too, when it had none). Every
check comes before the change's first write, so a refused change fails alone and leaves
nothing behind.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, func, insert, select, update

from numerai_autopilot.errors import LedgerError
from numerai_autopilot.ledger._rows import log_row, run_from_row
from numerai_autopilot.ledger.records import Change, Run
from numerai_autopilot.ledger.schema import run_logs, run_predictions, run_stages, runs
from numerai_autopilot.ledger.states import RunState, can_transition, transition_hint

_UNOWNED = (RunState.QUEUED, RunState.HELD)
# How long a run's predictions are kept: past its round's close, for a held run or a blend.
PREDICTIONS_MEMORY = timedelta(days=7)


def apply_changes(conn: Connection, changes: Sequence[Change], now: datetime, pg: bool
                  ) -> list[Run | LedgerError]:
    """Make `changes` in order in `conn`'s transaction; per change, the run after it or the
    LedgerError that refused it (nothing of that change written)."""
    if pg:  # lock the batch's runs in one order, so two batches never deadlock
        ids = sorted({change.run_id for change in changes})
        conn.execute(select(runs.c.id).where(runs.c.id.in_(ids)).order_by(runs.c.id)
                     .with_for_update())
    if any(change.predictions is not None for change in changes):
        forget_predictions(conn, now)
    results: list[Run | LedgerError] = []
    for change in changes:
        try:
            results.append(_apply(conn, change, now))
        except LedgerError as exc:
            results.append(exc)
    return results


def _apply(conn: Connection, change: Change, now: datetime) -> Run:
    """Write `change` and return the run after it; raises LedgerError, having written
    nothing, when the change is refused."""
    row = conn.execute(select(runs).where(runs.c.id == change.run_id)).first()
    if row is None:
        raise LedgerError(f"run {change.run_id} not found in the ledger")
    run = run_from_row(row)
    state, via = RunState(change.state), change.via
    passing = dataclasses.replace(run, state=RunState(via)) if via is not None else run
    if via is not None:
        check_advance(run, via, change.owner, None, None)
    check_advance(passing, state, change.owner, change.error, change.submission_id)
    line = log_row(change.run_id, *change.log) if change.log is not None else None

    if via is not None:
        _enter_stage(conn, run, via, None, now)
    _enter_stage(conn, passing, state, change.error, now)
    if line is not None:
        conn.execute(insert(run_logs).values(at=now, **line))
    error = change.error
    if state is passing.state and not state.is_final and error is None:
        error = passing.error
    after = dataclasses.replace(
        run, state=state, updated_at=now, error=error,
        round_number=run.round_number if run.round_number is not None else change.round_number,
        submission_id=(change.submission_id if change.submission_id is not None
                       else run.submission_id),
        detail={**run.detail, **change.detail} if change.detail else run.detail,
        # queued and held runs belong to nobody: a process claims the one, a person the other
        lease_until=None if state.is_final or state in _UNOWNED else run.lease_until,
        owner=None if state in _UNOWNED else run.owner,
    )
    conn.execute(update(runs).where(runs.c.id == run.id).values(
        state=after.state.value, updated_at=now, error=after.error,
        round_number=after.round_number, submission_id=after.submission_id, detail=after.detail,
        lease_until=after.lease_until, owner=after.owner,
    ))
    if change.predictions is not None:
        keep_predictions(conn, run.id, *change.predictions, now)
    return after


def keep_predictions(conn: Connection, run_id: str, csv: bytes, rows: int,
                     now: datetime) -> None:
    """Keep `csv` (compressed) as the run's predictions, replacing any kept before."""
    conn.execute(delete(run_predictions).where(run_predictions.c.run_id == run_id))
    conn.execute(insert(run_predictions).values(run_id=run_id, kept_at=now, rows=rows,
                                                csv_zlib=zlib.compress(csv, 1)))


def forget_predictions(conn: Connection, now: datetime) -> None:
    """Delete the predictions kept more than `PREDICTIONS_MEMORY` before `now`."""
    conn.execute(delete(run_predictions).where(
        run_predictions.c.kept_at < now - PREDICTIONS_MEMORY))


def check_advance(
    run: Run,
    state: RunState,
    owner: str | None,
    error: str | None,
    submission_id: str | None,
) -> None:
    """Raise LedgerError when `run` may not move to `state` (owner, transition, what the
    state needs)."""
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


def _enter_stage(conn: Connection, run: Run, state: RunState, error: str | None,
                 now: datetime) -> None:
    """Close the run's open stage (its outcome: `state`) and open `state`'s, unless final;
    nothing when `state` is the run's own and its stage is open for this attempt."""
    if state is run.state:
        resumed = conn.scalar(
            select(func.count()).select_from(run_stages).where(
                run_stages.c.run_id == run.id, run_stages.c.ended_at.is_(None),
                run_stages.c.attempt == run.attempts)
        )
        if resumed:
            return
    ending_error = (
        error if state in (RunState.FAILED, RunState.SKIPPED, RunState.QUEUED) else None
    )
    conn.execute(
        update(run_stages)
        .where(run_stages.c.run_id == run.id, run_stages.c.ended_at.is_(None))
        .values(ended_at=now, outcome=state.value, error=ending_error)
    )
    if not state.is_final:
        conn.execute(insert(run_stages).values(
            run_id=run.id, state=state.value, attempt=run.attempts, started_at=now))
