"""State changes in the caller's transaction, many at once: every check, then a few writes.

A change reads its run, checks the move (`check_advance`), closes the open stage row
(its outcome is the state entered), opens the next, appends its log line and updates the
run. A batch is one read and one statement per kind of write, each executed for every row
at once, so a round's runs changing together cost about as much as one. Every check comes
before the first write, so a refused change fails alone and leaves nothing behind.

Stage rows of one run must be written in order (a `via` state is opened and closed on the
way). Rows of different runs are independent, so the n-th stage write of every change goes
in the same statement; a run changed twice in one batch is split into consecutive waves.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, insert, select, update

from numerai_autopilot.errors import LedgerError
from numerai_autopilot.ledger._rows import log_row, run_from_row
from numerai_autopilot.ledger.records import Change, Run
from numerai_autopilot.ledger.schema import run_logs, run_stages, runs
from numerai_autopilot.ledger.states import RunState, can_transition, transition_hint

_CLOSE_STAGE = (
    update(run_stages)
    .where(run_stages.c.run_id == bindparam("b_run"), run_stages.c.ended_at.is_(None))
    .values(ended_at=bindparam("b_at", type_=run_stages.c.ended_at.type),
            outcome=bindparam("b_outcome"), error=bindparam("b_error"))
)
_SET_RUN = (
    update(runs)
    .where(runs.c.id == bindparam("b_id"))
    .values(**{name: bindparam(f"b_{name}", type_=runs.c[name].type)
               for name in ("state", "updated_at", "error", "submission_id", "detail",
                            "lease_until", "owner")})
)

# A stage write: ("close", params of _CLOSE_STAGE) or ("open", a run_stages row).
_Write = tuple[str, dict[str, Any]]


def apply_changes(conn: Connection, changes: Sequence[Change], now: datetime, pg: bool
                  ) -> list[Run | LedgerError]:
    """Make `changes` in order in `conn`'s transaction; per change, the run after it or the
    LedgerError that refused it (nothing of that change written)."""
    results: list[Run | LedgerError] = []
    wave: list[Change] = []
    for change in changes:
        if any(c.run_id == change.run_id for c in wave):
            results += _apply_wave(conn, wave, now, pg)
            wave = []
        wave.append(change)
    return results + (_apply_wave(conn, wave, now, pg) if wave else [])


def _apply_wave(conn: Connection, wave: list[Change], now: datetime, pg: bool
                ) -> list[Run | LedgerError]:
    """Changes of distinct runs."""
    query = select(runs).where(runs.c.id.in_([c.run_id for c in wave])).order_by(runs.c.id)
    if pg:
        query = query.with_for_update()
    current = {run.id: run for run in map(run_from_row, conn.execute(query))}
    results: list[Run | LedgerError] = []
    stage_writes: list[list[_Write]] = []
    lines: list[dict[str, Any]] = []
    for change in wave:
        run = current.get(change.run_id)
        try:
            if run is None:
                raise LedgerError(f"run {change.run_id} not found in the ledger")
            after, writes, line = _plan(conn, run, change, now)
        except LedgerError as exc:
            results.append(exc)
            continue
        results.append(after)
        stage_writes.append(writes)
        if line is not None:
            lines.append(line)
    changed = [r for r in results if isinstance(r, Run)]
    if not changed:
        return results
    for layer in range(max(len(w) for w in stage_writes)):
        step = [w[layer] for w in stage_writes if len(w) > layer]
        closes = [params for kind, params in step if kind == "close"]
        opens = [params for kind, params in step if kind == "open"]
        if closes:
            conn.execute(_CLOSE_STAGE, closes)
        if opens:
            conn.execute(insert(run_stages), opens)
    if lines:
        conn.execute(insert(run_logs), lines)
    conn.execute(_SET_RUN, [
        {"b_id": r.id, "b_state": r.state.value, "b_updated_at": r.updated_at,
         "b_error": r.error, "b_submission_id": r.submission_id, "b_detail": r.detail,
         "b_lease_until": r.lease_until, "b_owner": r.owner}
        for r in changed])
    return results


def _plan(conn: Connection, run: Run, change: Change, now: datetime
          ) -> tuple[Run, list[_Write], dict[str, Any] | None]:
    """The run after `change`, its stage writes and log row; raises LedgerError, having
    written nothing, when the change is refused."""
    state, via = RunState(change.state), change.via
    passing = dataclasses.replace(run, state=RunState(via)) if via is not None else run
    if via is not None:
        check_advance(run, via, change.owner, None, None)
    check_advance(passing, state, change.owner, change.error, change.submission_id)
    line = (log_row(change.run_id, *change.log) | {"at": now}
            if change.log is not None else None)
    writes: list[_Write] = []
    if via is not None:
        writes += _stage_writes(conn, run, via, None, now)
    writes += _stage_writes(conn, passing, state, change.error, now)
    error = change.error
    if state is passing.state and not state.is_final and error is None:
        error = passing.error
    after = dataclasses.replace(
        run, state=state, updated_at=now, error=error,
        submission_id=(change.submission_id if change.submission_id is not None
                       else run.submission_id),
        detail={**run.detail, **change.detail} if change.detail else run.detail,
        lease_until=None if state.is_final or state is RunState.QUEUED else run.lease_until,
        owner=None if state is RunState.QUEUED else run.owner,
    )
    return after, writes, line


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


def _stage_writes(conn: Connection, run: Run, state: RunState, error: str | None,
                  now: datetime) -> list[_Write]:
    """Close the run's open stage (its outcome: `state`) and open `state`'s, unless final."""
    if state is run.state:
        resumed = conn.scalar(
            select(func.count()).select_from(run_stages).where(and_(
                run_stages.c.run_id == run.id, run_stages.c.ended_at.is_(None),
                run_stages.c.attempt == run.attempts))
        )
        if resumed:
            return []  # already timing this stage for this attempt
    ending_error = (
        error if state in (RunState.FAILED, RunState.SKIPPED, RunState.QUEUED) else None
    )
    writes: list[_Write] = [("close", {"b_run": run.id, "b_at": now,
                                       "b_outcome": state.value, "b_error": ending_error})]
    if not state.is_final:
        writes.append(("open", {"run_id": run.id, "state": state.value, "attempt": run.attempts,
                                "started_at": now, "ended_at": None, "outcome": None,
                                "error": None}))
    return writes
