"""Recording new runs: the rules on trigger ids and (model, round) pairs, in one transaction.

`record_runs` is what `Ledger.record`, `record_if_absent_for_round` and `record_many` run
inside their write transaction.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, text

from numerai_autopilot.ledger._reads import UNFINISHED
from numerai_autopilot.ledger._rows import run_from_row
from numerai_autopilot.ledger.records import NewRun, Run, utcnow
from numerai_autopilot.ledger.schema import run_stages, runs
from numerai_autopilot.ledger.states import RunState

# Locks in ascending key order (unnest keeps the array's order), so two transactions that
# share rounds cannot deadlock.
_LOCK_ROUNDS = text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) AS k")


@dataclass(frozen=True, slots=True)
class Recording:
    """A run to record; `only_if_round_absent` for the round watcher's runs."""

    new_run: NewRun
    only_if_round_absent: bool = False


def round_lock_key(model_id: str, round_number: int) -> int:
    """A signed 64-bit advisory lock key for one (model, round)."""
    digest = hashlib.blake2b(f"ledger.round:{model_id}:{round_number}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)


def record_runs(conn: Connection, recordings: Sequence[Recording], pg: bool
                ) -> list[tuple[Run, bool]]:
    """Record each of `recordings` in `conn`'s transaction, in order; `(run, created)` each.

    A (model_id, trigger_id) already recorded gives back its run, not created. A recording
    `only_if_round_absent` gives back the (model, round)'s first run that did not fail, if
    any, or else the model's unfinished run that will learn its round (`_learning`).
    Otherwise a new run is queued, or skipped with the reason when its (model, round)
    already has a submitted run or one in progress (unless `resubmit` or a test round).
    On PostgreSQL the rounds' advisory locks serialise concurrent recorders of one round.

    Raises IntegrityError if another process inserted one of the same triggers meanwhile;
    the caller then records them one by one.
    """
    now = utcnow()
    rounds = sorted({(r.new_run.model_id, r.new_run.round_number) for r in recordings
                     if r.new_run.round_number is not None})
    if pg and rounds:
        conn.execute(_LOCK_ROUNDS, {"keys": sorted({round_lock_key(*pair) for pair in rounds})})
    known = {(run.model_id, run.trigger_id): run for run in _by_trigger(conn, recordings)}
    by_round: dict[tuple[str, int | None], list[Run]] = {}
    for run in _by_round(conn, rounds):
        by_round.setdefault((run.model_id, run.round_number), []).append(run)
    learning = _learning(conn, [r.new_run.model_id for r in recordings if r.only_if_round_absent])
    results: list[tuple[Run, bool]] = []
    created: list[Run] = []
    for recording in recordings:
        new_run = recording.new_run
        existing = known.get((new_run.model_id, new_run.trigger_id))
        same_round = by_round.setdefault((new_run.model_id, new_run.round_number), [])
        taken = same_round[0] if same_round else learning.get(new_run.model_id)
        if existing is not None:
            results.append((existing, False))
        elif recording.only_if_round_absent and taken is not None:
            results.append((taken, False))
        else:
            run = _as_run(new_run, now, same_round)
            known[(new_run.model_id, new_run.trigger_id)] = run
            if new_run.round_number is not None:
                same_round.append(run)
            created.append(run)
            results.append((run, True))
    if created:
        # RETURNING makes SQLAlchemy send the rows as multi-row INSERTs ("insertmanyvalues"),
        # not one statement a row: fewer round trips into SQLite, each releasing the GIL.
        conn.execute(insert(runs).returning(runs.c.id), [_run_values(run) for run in created])
        queued = [{"run_id": run.id, "state": RunState.QUEUED.value, "attempt": 0,
                   "started_at": now} for run in created if run.state is RunState.QUEUED]
        if queued:
            conn.execute(insert(run_stages).returning(run_stages.c.id), queued)
    return results


def _by_trigger(conn: Connection, recordings: Sequence[Recording]) -> list[Run]:
    """The recorded runs with one of these (model_id, trigger_id) pairs."""
    pairs = {(r.new_run.model_id, r.new_run.trigger_id) for r in recordings}
    query = select(runs).where(runs.c.model_id.in_(sorted({m for m, _ in pairs})),
                               runs.c.trigger_id.in_(sorted({t for _, t in pairs})))
    found = map(run_from_row, conn.execute(query))
    return [run for run in found if (run.model_id, run.trigger_id) in pairs]


def _by_round(conn: Connection, rounds: Sequence[tuple[str, int | None]]) -> list[Run]:
    """The runs of these (model_id, round) pairs that did not fail, oldest first; dry runs
    are no round's runs."""
    if not rounds:
        return []
    query = (select(runs)
             .where(runs.c.model_id.in_(sorted({m for m, _ in rounds})),
                    runs.c.round_number.in_(sorted({n for _, n in rounds if n is not None})),
                    runs.c.state != RunState.FAILED.value, runs.c.source != "dry-run")
             .order_by(runs.c.created_at, runs.c.id))
    wanted = set(rounds)
    return [run for run in map(run_from_row, conn.execute(query))
            if (run.model_id, run.round_number) in wanted]


def _learning(conn: Connection, model_ids: Sequence[str]) -> dict[str, Run]:
    """Per model, its oldest unfinished run that names no round and is not a test: a webhook
    whose round could not be read, not yet told its round by Numerai. It will run the
    current round, so the round watcher's run for that round would be a second one."""
    if not model_ids:
        return {}
    query = (select(runs)
             .where(runs.c.model_id.in_(sorted(set(model_ids))), runs.c.round_number.is_(None),
                    runs.c.is_test.is_(False), runs.c.state.in_(UNFINISHED),
                    runs.c.source != "dry-run")
             .order_by(runs.c.created_at, runs.c.id))
    oldest: dict[str, Run] = {}
    for run in map(run_from_row, conn.execute(query)):
        oldest.setdefault(run.model_id, run)
    return oldest


def _run_values(run: Run) -> dict[str, Any]:
    """`run` as a row of `runs` (each column is a field of Run)."""
    values = {column.name: getattr(run, column.name) for column in runs.c}
    values["state"] = run.state.value
    return values


def _as_run(new_run: NewRun, now: datetime, same_round: list[Run]) -> Run:
    """The row to insert for `new_run`: queued, or skipped with the reason (`_skip_reason`)."""
    state, error = RunState.QUEUED, None
    if not new_run.resubmit and not new_run.is_test and new_run.round_number is not None:
        state, error = _skip_reason(new_run.round_number, same_round)
    return Run(
        id=str(uuid.uuid4()),
        model_name=new_run.model_name,
        model_id=new_run.model_id,
        tournament=new_run.tournament,
        round_number=new_run.round_number,
        trigger_id=new_run.trigger_id,
        data_version=new_run.data_version,
        is_test=new_run.is_test,
        source=new_run.source,
        state=state,
        attempts=0,
        error=error,
        submission_id=None,
        created_at=now,
        updated_at=now,
        owner=None,
        lease_until=None,
        close_time=new_run.close_time,
        detail={},
        resubmit=new_run.resubmit,
        webhook_body=new_run.webhook_body,
    )


def _skip_reason(round_number: int, same_round: list[Run]) -> tuple[RunState, str | None]:
    """SKIPPED and why, if another run of this (model, round) submitted or is running."""
    for run in same_round:
        if run.state is RunState.SUBMITTED:
            return RunState.SKIPPED, (
                f"round {round_number} already submitted by run {run.id}; "
                "set resubmit = true to submit again"
            )
    for run in same_round:
        if not run.is_final:
            return RunState.SKIPPED, (
                f"round {round_number} is already being run by run {run.id} "
                f"({run.state.value}); set resubmit = true to run it again"
            )
    return RunState.QUEUED, None
