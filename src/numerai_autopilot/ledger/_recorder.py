"""Recording runs with group commit: concurrent ``record()`` calls share one transaction.

A burst of webhooks (200 at once when a round opens) would otherwise queue for the single
SQLite writer, one fsync each, and the last caller would wait for all the others. Instead
the first caller to find no write in progress becomes the leader: it takes every waiting
request (up to ``max_batch``), writes them in one transaction, commits, and wakes the
callers. Each caller still returns only after the commit that holds its run.
"""

from __future__ import annotations

import functools
import hashlib
import json
import operator
import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Dialect, Table, bindparam, insert, select, text

from numerai_autopilot.ledger._rows import run_from_row
from numerai_autopilot.ledger.schema import run_stages, runs
from numerai_autopilot.ledger.states import RunState
from numerai_autopilot.ledger.types import NewRun, Run, new_run_ids, utcnow

# Locks in ascending key order (unnest keeps the array's order), so two batches that share
# rounds cannot deadlock.
_LOCK_ROUNDS = text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) AS k")


@dataclass(slots=True)
class Request:
    """One caller's ``record`` waiting in the group commit."""

    new: NewRun
    only_if_round_absent: bool
    result: tuple[Run, bool] | None = None
    error: tuple[str, BaseException] | None = None  # message and cause, re-raised per caller
    done: bool = False
    wake: threading.Event | None = None  # the group commit's; a batch of `record_many` has none


class GroupCommit:
    """Leader/follower batching of requests; ``write`` fills each request's result or error.

    Each waiting caller sleeps on its own event, set either when its request is committed or
    when it is handed the leader's role, so a commit wakes only the callers it concerns.
    One leader at a time, on PostgreSQL too: measured, parallel batches were slower (the
    work is bound by Python's GIL, not by the server).
    """

    def __init__(self, write: Callable[[list[Request]], None], max_batch: int = 256) -> None:
        self._write = write
        self._max_batch = max_batch
        self._mutex = threading.Lock()
        self._queue: deque[Request] = deque()
        self._writing = False

    def submit(self, request: Request) -> None:
        """Return once ``request`` is done (committed, or failed with ``request.error``)."""
        wake = request.wake = threading.Event()
        with self._mutex:
            self._queue.append(request)
            lead = not self._writing
            self._writing = True
        if not lead:
            wake.wait()
            if request.done:
                return
        # We lead: write batches until ours is done, then pass the role on.
        try:
            while not request.done:
                with self._mutex:
                    size = min(len(self._queue), self._max_batch)
                    batch = [self._queue.popleft() for _ in range(size)]
                try:
                    self._write(batch)
                finally:
                    for item in batch:
                        item.done = True
                        if item is not request and item.wake is not None:
                            item.wake.set()
        finally:
            with self._mutex:
                if self._queue:
                    successor = self._queue[0].wake
                    assert successor is not None  # every queued request came through `submit`
                    successor.set()  # not done, so it knows it leads now
                else:
                    self._writing = False


def round_lock_key(model_id: str, round_number: int) -> int:
    """A signed 64-bit advisory lock key for one (model, round)."""
    digest = hashlib.blake2b(f"ledger.round:{model_id}:{round_number}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)


# A batch's (model, trigger) pairs, looked up through the unique index on them, with one
# statement text whatever the batch's size: a row-value IN such as
# `(model_id, trigger_id) IN (VALUES ...)` makes SQLite scan the whole table, and an index on
# trigger_id alone (schema v3-v4) was one more written at random places by every burst.
_RUN_COLUMNS = ", ".join(f"runs.{c.name}" for c in runs.c)
_BY_PAIR_SQLITE = text(  # the pairs as a JSON array of [model_id, trigger_id]; CROSS JOIN
    f"SELECT {_RUN_COLUMNS} FROM json_each(:pairs) AS v CROSS JOIN runs "  # keeps v outer
    "WHERE runs.model_id = json_extract(v.value, '$[0]') "
    "AND runs.trigger_id = json_extract(v.value, '$[1]')").columns(*runs.c)
_BY_PAIR_PG = text(
    f"SELECT {_RUN_COLUMNS} FROM unnest(CAST(:models AS text[]), CAST(:triggers AS text[])) "
    "AS v(model_id, trigger_id) JOIN runs "
    "ON runs.model_id = v.model_id AND runs.trigger_id = v.trigger_id").columns(*runs.c)
_BY_ROUND = (
    select(runs)
    .where(
        runs.c.model_id.in_(bindparam("models", expanding=True)),
        runs.c.round_number.in_(bindparam("rounds", expanding=True)),
        runs.c.state != RunState.FAILED.value,
    )
    .order_by(runs.c.created_at, runs.c.id)
)


def warm_up_insert_batch(conn: Connection, pg: bool) -> None:
    """Run `insert_batch` once in a transaction rolled back: its statements compiled."""
    probe = NewRun(model_name="warm-up", model_id="warm-up", tournament=8, round_number=0,
                   trigger_id="warm-up", data_version="v5.0", is_test=False, source="webhook")
    transaction = conn.begin()
    try:
        insert_batch(conn, [Request(probe, only_if_round_absent=False)], pg)
    finally:
        transaction.rollback()


def insert_batch(conn: Connection, batch: Sequence[Request], pg: bool) -> None:
    """Record every request of ``batch`` in ``conn``'s transaction, in order.

    Raises IntegrityError if another process inserted one of the same triggers meanwhile; the
    caller then retries the requests one by one.
    """
    now = utcnow()
    pairs = sorted(
        {(r.new.model_id, r.new.round_number) for r in batch if r.new.round_number is not None}
    )
    if pg and pairs:
        keys = sorted({round_lock_key(model, number) for model, number in pairs})
        conn.execute(_LOCK_ROUNDS, {"keys": keys})
    known = {(run.model_id, run.trigger_id): run
             for run in map(run_from_row, conn.execute(*by_pair(
                 sorted({(r.new.model_id, r.new.trigger_id) for r in batch}), pg)))}
    by_round: dict[tuple[str, int | None], list[Run]] = {}
    if pairs:  # models x rounds: a superset of the pairs (a batch has one or two rounds)
        rows = conn.execute(_BY_ROUND, {"models": sorted({model for model, _ in pairs}),
                                        "rounds": sorted({number for _, number in pairs})})
        wanted = set(pairs)
        for run in map(run_from_row, rows):
            if (run.model_id, run.round_number) in wanted:
                by_round.setdefault((run.model_id, run.round_number), []).append(run)
    created: list[Run] = []
    ids = iter(new_run_ids(len(batch)))  # one each, at most
    for request in batch:
        new = request.new
        existing = known.get((new.model_id, new.trigger_id))
        same_round = by_round.setdefault((new.model_id, new.round_number), [])
        if existing is not None:
            request.result = (existing, False)
        elif request.only_if_round_absent and same_round:
            request.result = (same_round[0], False)
        else:
            run = _new_run(new, now, same_round, next(ids))
            known[(new.model_id, new.trigger_id)] = run
            if new.round_number is not None:
                same_round.append(run)
            created.append(run)
            request.result = (run, True)
    if created:
        insert_rows(conn, runs, [_run_row(run) for run in created])
        queued = RunState.QUEUED.value
        stage_rows = [(run.id, queued, 0, now, None, None, None)
                      for run in created if run.state is RunState.QUEUED]  # _STAGE_COLUMNS
        if stage_rows:
            insert_rows(conn, run_stages, stage_rows)


def by_pair(pairs: Sequence[tuple[str, str]], pg: bool) -> tuple[Any, dict[str, Any]]:
    """The statement and parameters that read the runs of these (model_id, trigger_id)."""
    if pg:
        return _BY_PAIR_PG, {"models": [m for m, _ in pairs], "triggers": [t for _, t in pairs]}
    return _BY_PAIR_SQLITE, {"pairs": json.dumps(pairs)}


def insert_rows(conn: Connection, table: Table, rows: Sequence[tuple[Any, ...]]) -> None:
    """INSERT `rows` into `table`, each a tuple of `_columns(table)`'s values in order.

    On SQLite, as few multi-row statements as its limit on parameters allows, each value
    converted by SQLAlchemy's own bind processor for its column: SQLAlchemy's executemany
    handled each row in Python (~75 µs a run, most of recording a burst of webhooks) and
    stepped SQLite once per row, each step releasing the GIL to the event loop and waiting
    to take it back while the loop was busy answering the burst. Elsewhere, SQLAlchemy's
    executemany (psycopg sends the rows in one pipeline).
    """
    dialect = conn.dialect
    if dialect.name != "sqlite":
        names = _columns(table)
        conn.execute(insert(table), [dict(zip(names, row, strict=True)) for row in rows])
        return
    head, one, converters = _sqlite_insert(table, dialect)
    width = len(_columns(table))
    limit = _SQLITE_MAX_VARIABLES
    raw = conn.connection.dbapi_connection
    if raw is not None and hasattr(raw, "getlimit"):
        limit = raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    per = max(1, limit // width)
    # Only the columns with a bind processor are touched, and a batch's rows share their
    # timestamps (one `now`) and mostly their empty `detail`: each distinct value converted once.
    for start in range(0, len(rows), per):
        chunk = rows[start:start + per]
        values: list[Any] = []
        for row in chunk:
            if converters:
                converted = list(row)
                for converter in converters:
                    converter(converted)
                values += converted
            else:
                values += row
        conn.exec_driver_sql(head + ", ".join([one] * len(chunk)), tuple(values))


_SQLITE_MAX_VARIABLES = 999  # the least of every SQLite version (32,766 since 3.32)


@functools.cache
def _columns(table: Table) -> tuple[str, ...]:
    """The columns an INSERT of `insert_rows` fills: all but an autoincrement key."""
    return tuple(c.name for c in table.c if not (c.primary_key and c.autoincrement is True))


class _Converter:
    """Applies one column's bind processor in place, remembering the last value converted
    (by identity) and what it became; an empty dict counts as the same value each time."""

    __slots__ = ("_converted", "_index", "_process", "_seen")

    def __init__(self, index: int, process: Callable[[Any], Any]) -> None:
        self._index = index
        self._process = process
        self._seen: Any = _NOTHING
        self._converted: Any = None

    def __call__(self, row: list[Any]) -> None:
        value = row[self._index]
        if isinstance(value, dict) and not value:
            value = _EMPTY
        if value is not self._seen:
            self._seen, self._converted = value, self._process(value)
        row[self._index] = self._converted


_NOTHING = object()
_EMPTY: dict[str, Any] = {}  # never changed: stands for every empty `detail`


def _sqlite_insert(table: Table, dialect: Dialect) -> tuple[str, str, list[_Converter]]:
    """`INSERT INTO t (...) VALUES `, `(?, ...)` and a converter per column needing one.
    The converters remember values: new ones for each call."""
    head, one, processors = _sqlite_statement(table, dialect)
    return head, one, [_Converter(i, p) for i, p in processors]


@functools.cache
def _sqlite_statement(table: Table, dialect: Dialect) -> tuple[
        str, str, tuple[tuple[int, Callable[[Any], Any]], ...]]:
    names = _columns(table)
    columns = [table.c[name] for name in names]
    quote = dialect.identifier_preparer.quote
    processors = tuple(
        (i, process) for i, column in enumerate(columns)
        if (process := column.type.dialect_impl(dialect).bind_processor(dialect)) is not None)
    head = f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in names)}) VALUES "
    return head, "(" + ", ".join("?" * len(names)) + ")", processors


def _run_row(run: Run) -> tuple[Any, ...]:
    """`run` as a row of `runs`, in `_columns(runs)`'s order (each column is a field of Run)."""
    row = _RUN_VALUES(run)
    return (*row[:_STATE_INDEX], run.state.value, *row[_STATE_INDEX + 1:])


_RUN_VALUES = operator.attrgetter(*_columns(runs))
_STATE_INDEX = _columns(runs).index("state")
# The order of the stage rows `insert_batch` builds; checked against the schema on import.
_STAGE_COLUMNS = ("run_id", "state", "attempt", "started_at", "ended_at", "outcome", "error")
if _columns(run_stages) != _STAGE_COLUMNS:
    raise RuntimeError(f"run_stages columns changed to {_columns(run_stages)}: update _STAGE_COLUMNS "
                       "and the stage rows of insert_batch")


def _new_run(new: NewRun, now: datetime, same_round: list[Run], run_id: str) -> Run:
    state, error = RunState.QUEUED, None
    if not new.resubmit and not new.is_test and new.round_number is not None:
        state, error = _skip_reason(new.round_number, same_round)
    return Run(
        id=run_id,
        model_name=new.model_name,
        model_id=new.model_id,
        tournament=new.tournament,
        round_number=new.round_number,
        trigger_id=new.trigger_id,
        data_version=new.data_version,
        is_test=new.is_test,
        source=new.source,
        state=state,
        attempts=0,
        error=error,
        submission_id=None,
        created_at=now,
        updated_at=now,
        owner=None,
        lease_until=None,
        close_time=new.close_time,
        detail={},
        resubmit=new.resubmit,
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
