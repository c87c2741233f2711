"""Reading the ledger, and the plumbing its writes share (connections, error translation)."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from numerai_autopilot.errors import AmbiguousRunId, LedgerError
from numerai_autopilot.ledger._engine import configure_sqlite, is_postgres, write_transaction
from numerai_autopilot.ledger._rows import log_from_row, run_from_row, stage_from_row
from numerai_autopilot.ledger.records import LogLine, Run, StageRecord
from numerai_autopilot.ledger.schema import run_logs, run_stages, runs
from numerai_autopilot.ledger.states import UNFINISHED_STATES, RunState

UNFINISHED = [s.value for s in UNFINISHED_STATES]


class LedgerReader:
    """Queries over runs, stages and logs; ``Ledger`` adds every write."""

    def __init__(self, engine: Engine) -> None:
        configure_sqlite(engine)
        self._engine = engine
        self._pg = is_postgres(engine)
        # SQLite has one writer at a time; queueing our own threads on a lock is fairer and
        # quicker than letting them poll SQLite's busy handler, which sleeps between tries.
        self._write_lock: AbstractContextManager[Any] = (
            nullcontext() if self._pg else threading.Lock()
        )

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine the ledger was made with."""
        return self._engine

    def logs(self, run_id: str, after_id: int = 0, limit: int = 1000) -> list[LogLine]:
        """A run's log lines with ``id > after_id``, oldest first, at most ``limit``."""
        with self._translate("read logs"), self._engine.connect() as conn:
            rows = conn.execute(
                select(run_logs)
                .where(run_logs.c.run_id == run_id, run_logs.c.id > after_id)
                .order_by(run_logs.c.id)
                .limit(limit)
            ).all()
        return [log_from_row(row) for row in rows]

    # -- reading -----------------------------------------------------------------------------

    def get(self, run_id: str) -> Run | None:
        """The run with this id, or None."""
        return self._one("read a run", select(runs).where(runs.c.id == run_id))

    def get_by_prefix(self, prefix: str) -> Run | None:
        """The run whose id is `prefix` or, failing that, the one run whose id starts with
        it (as `autopilot runs` shortens ids); None when no run's does.

        :raises AmbiguousRunId: several runs' ids start with `prefix`.
        """
        exact = self.get(prefix)
        if exact is not None or not prefix:
            return exact
        # LIKE ignores case on SQLite: the ids are checked again here, exactly.
        query = select(runs.c.id).where(runs.c.id.startswith(prefix, autoescape=True))
        with self._translate("look a run id up"), self._engine.connect() as conn:
            ids = [run_id for run_id in conn.scalars(query) if run_id.startswith(prefix)]
        if len(ids) > 1:
            raise AmbiguousRunId(prefix, len(ids))
        return self.get(ids[0]) if ids else None

    def find(self, model_id: str, trigger_id: str) -> Run | None:
        """The run recorded for this model and Numerai trigger id, if any."""
        return self._one(
            "find a run",
            select(runs).where(runs.c.model_id == model_id, runs.c.trigger_id == trigger_id),
        )

    def submitted_run(self, model_id: str, round_number: int) -> Run | None:
        """The earliest submitted run of this model for this round, if any."""
        return self._one(
            "find a submitted run",
            select(runs)
            .where(
                runs.c.model_id == model_id,
                runs.c.round_number == round_number,
                runs.c.state == RunState.SUBMITTED.value,
            )
            .order_by(runs.c.created_at)
            .limit(1),
        )

    def round_runs(self, tournament: int, round_number: int, model_names: Iterable[str]
                   ) -> list[Run]:
        """Every run of these models (by configured name) for this round of `tournament`,
        oldest first; test runs name no round and are never among them. What a blend reads
        of its members' runs, whichever instance ran them."""
        return self._many(
            "list a round's runs",
            select(runs)
            .where(runs.c.round_number == round_number, runs.c.tournament == tournament,
                   runs.c.model_name.in_(list(model_names)))
            .order_by(runs.c.created_at, runs.c.id),
        )

    def runs(
        self,
        limit: int = 50,
        model_name: str | None = None,
        round_number: int | None = None,
        states: Iterable[RunState] | None = None,
    ) -> list[Run]:
        """Recent runs, newest first, optionally filtered."""
        query = select(runs).order_by(runs.c.created_at.desc(), runs.c.id.desc()).limit(limit)
        if model_name is not None:
            query = query.where(runs.c.model_name == model_name)
        if round_number is not None:
            query = query.where(runs.c.round_number == round_number)
        if states is not None:
            query = query.where(runs.c.state.in_([RunState(s).value for s in states]))
        return self._many("list runs", query)

    def unfinished(self) -> list[Run]:
        """Every run not yet submitted, failed or skipped, oldest first."""
        return self._many(
            "list unfinished runs",
            select(runs).where(runs.c.state.in_(UNFINISHED)).order_by(runs.c.created_at, runs.c.id),
        )

    def stages(self, run_id: str) -> list[StageRecord]:
        """A run's stages in the order they started."""
        with self._translate("read stages"), self._engine.connect() as conn:
            rows = conn.execute(
                select(run_stages).where(run_stages.c.run_id == run_id).order_by(run_stages.c.id)
            ).all()
        return [stage_from_row(row) for row in rows]

    def counts_by_state(self) -> dict[RunState, int]:
        """How many runs are in each state (every state present, zeros included)."""
        with self._translate("count runs"), self._engine.connect() as conn:
            rows = conn.execute(select(runs.c.state, func.count()).group_by(runs.c.state)).all()
        counts = dict.fromkeys(RunState, 0)
        for state, count in rows:
            counts[RunState(state)] = int(count)
        return counts

    # -- plumbing ----------------------------------------------------------------------------

    def _one(self, action: str, query: Any) -> Run | None:
        with self._translate(action), self._engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else run_from_row(row)

    def _many(self, action: str, query: Any) -> list[Run]:
        with self._translate(action), self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [run_from_row(row) for row in rows]

    @contextmanager
    def _write(self, *, durable: bool = True) -> Iterator[Connection]:
        with self._write_lock, write_transaction(self._engine, durable=durable) as conn:
            yield conn

    @contextmanager
    def _translate(self, action: str) -> Iterator[None]:
        try:
            yield
        except SQLAlchemyError as exc:
            raise LedgerError(self._describe(action, exc)) from exc

    def _describe(self, action: str, exc: BaseException) -> str:
        where = self._engine.url.render_as_string(hide_password=True)
        if isinstance(exc, LedgerError):
            return str(exc)
        detail = reason(exc) if isinstance(exc, SQLAlchemyError) else f"{type(exc).__name__}: {exc}"
        return f"ledger could not {action} ({where}): {detail}"


def reason(exc: SQLAlchemyError) -> str:
    """The driver's first line, without SQLAlchemy's statement and parameters."""
    cause = exc.orig if isinstance(exc, DBAPIError) else exc.__cause__ or exc
    first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    lowered = first.lower()
    if "no such table" in lowered or ("relation" in lowered and "does not exist" in lowered):
        first += "; the schema is missing: run Ledger.migrate() (autopilot serve does)"
    elif isinstance(exc, DBAPIError) and exc.connection_invalidated or "connect" in lowered:
        first += "; check the ledger URL and that the database is running"
    return first
