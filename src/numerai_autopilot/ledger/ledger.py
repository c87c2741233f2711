"""The run ledger: every run, its state changes and stages, claimed by workers under leases.

Every state change goes through ``Ledger.advance``, which commits before it returns: callers
perform side effects (upload, notify) only afterwards. Timestamps come from this process's
clock in UTC; several instances sharing PostgreSQL are assumed NTP-synchronised, and a lease
of tens of seconds absorbs any remaining skew.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Self

from sqlalchemy import Connection, delete, insert, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from numerai_autopilot.errors import LedgerError
from numerai_autopilot.ledger import migrations
from numerai_autopilot.ledger._changes import (
    apply_changes,
)
from numerai_autopilot.ledger._engine import engine_from_url
from numerai_autopilot.ledger._reads import UNFINISHED, LedgerReader, reason
from numerai_autopilot.ledger._record import Recording, record_runs
from numerai_autopilot.ledger._rows import log_row, run_from_row
from numerai_autopilot.ledger.records import Change, NewRun, Run, utcnow
from numerai_autopilot.ledger.schema import (
    alerts_sent,
    run_logs,
    run_predictions,
    run_stages,
    runs,
)
from numerai_autopilot.ledger.states import RunState

ALERT_MEMORY = timedelta(days=90)  # how long a sent alert's key is kept


class Ledger(LedgerReader):
    """Runs and their stages in SQLite (one host) or PostgreSQL (several instances).

    >>> ledger = Ledger.from_url("sqlite:///.autopilot/ledger.db")  # doctest: +SKIP
    >>> ledger.migrate()  # doctest: +SKIP
    """

    @classmethod
    def from_url(cls, url: str, *, pool_size: int = 5, max_overflow: int = 10) -> Ledger:
        """``sqlite:///path/ledger.db`` (parent directory created) or ``postgresql+psycopg://``."""
        try:
            return cls(engine_from_url(url, pool_size=pool_size, max_overflow=max_overflow))
        except (ValueError, SQLAlchemyError, ImportError) as exc:
            raise LedgerError(f"ledger URL is not usable: {exc}") from exc

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- lifecycle ---------------------------------------------------------------------------

    def migrate(self, target: int | None = None) -> None:
        """Bring the schema to the latest version (or ``target``); safe to call concurrently."""
        with self._translate("migrate"):
            migrations.migrate(self._engine, target)

    def schema_version(self) -> int:
        """The applied schema version (0 for an empty database)."""
        with self._translate("read the schema version"):
            return migrations.current_version(self._engine)

    def ping(self) -> None:
        """Raise LedgerError if the database cannot be reached."""
        with self._translate("ping"), self._engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def close(self) -> None:
        """Close the engine's connections; the ledger is not used afterwards."""
        self._engine.dispose()

    # -- recording ---------------------------------------------------------------------------

    def record(self, new_run: NewRun) -> tuple[Run, bool]:
        """Record a run, committed before returning; ``(run, created)``.

        The same ``(model_id, trigger_id)`` gives back the existing run with ``created=False``.
        Unless ``new_run.resubmit`` or ``new_run.is_test``, the run is recorded as skipped
        when its (model, round) already has a submitted run, or a run still in progress (so
        two triggers for one round never upload concurrently). Raises LedgerError naming the
        field or the database's refusal.
        """
        return self._record(new_run, only_if_round_absent=False)

    def record_if_absent_for_round(self, new_run: NewRun) -> tuple[Run, bool]:
        """Record ``new_run`` only if its (model, round) has no run that is not failed, and
        the model has no unfinished run that will learn its round (a webhook whose round
        could not be read, recorded without one: it runs the current round).

        For the round watcher: when a webhook-started run exists (or any run that did not
        fail), that run is returned with ``created=False``. Atomic against concurrent
        ``record`` calls for the same model and round.
        """
        if new_run.round_number is None:
            raise LedgerError(
                f"run for model {new_run.model_name!r}: record_if_absent_for_round needs a "
                "round number"
            )
        return self._record(new_run, only_if_round_absent=True)

    def record_many(self, new_runs: Sequence[NewRun]) -> list[tuple[Run, bool] | LedgerError]:
        """Record several runs in one transaction, as `record` does each; committed before
        returning. One result per run, in order: `(run, created)`, or the LedgerError that
        run alone met (a bad run does not fail the others)."""
        results: list[tuple[Run, bool] | LedgerError | None] = []
        recordings: list[Recording] = []
        for new_run in new_runs:
            try:
                new_run.check()
            except LedgerError as exc:
                results.append(exc)
                continue
            recordings.append(Recording(new_run))
            results.append(None)
        written = iter(self._write_recordings(recordings) if recordings else [])
        return [next(written) if result is None else result for result in results]

    def _record(self, new_run: NewRun, *, only_if_round_absent: bool) -> tuple[Run, bool]:
        new_run.check()
        [outcome] = self._write_recordings([Recording(new_run, only_if_round_absent)])
        if isinstance(outcome, LedgerError):
            raise outcome
        return outcome

    def _write_recordings(self, recordings: Sequence[Recording]
                          ) -> list[tuple[Run, bool] | LedgerError]:
        """`record_runs` in one transaction; when another process inserted one of the same
        triggers meanwhile, each recording again on its own."""
        try:
            with self._write() as conn:
                return list(record_runs(conn, recordings, self._pg))
        except IntegrityError as exc:
            if len(recordings) > 1:
                return [self._write_recordings([one])[0] for one in recordings]
            return [self._after_conflict(recordings[0].new_run, exc)]
        except Exception as exc:  # noqa: BLE001 - handed to every caller as a LedgerError
            error = LedgerError(self._describe("record a run", exc))
            error.__cause__ = exc
            return [error] * len(recordings)

    def _after_conflict(self, new_run: NewRun, exc: IntegrityError
                        ) -> tuple[Run, bool] | LedgerError:
        """The run another process recorded for `new_run`'s trigger, or the database's
        refusal."""
        try:
            existing = self.find(new_run.model_id, new_run.trigger_id)
        except LedgerError as find_exc:
            return find_exc
        if existing is not None:
            return existing, False
        error = LedgerError(f"run for model {new_run.model_name!r} trigger "
                            f"{new_run.trigger_id!r} was refused by the database: {reason(exc)}")
        error.__cause__ = exc
        return error

    # -- claiming ----------------------------------------------------------------------------

    def claim(
        self, owner: str, lease_s: float = 60.0, limit: int = 1, *, run_id: str | None = None
    ) -> list[Run]:
        """Take up to ``limit`` runs to work on, oldest first, leased to ``owner``.

        Claimable: unfinished runs with no live lease, i.e. queued runs and runs whose owner
        stopped renewing (a crashed process). Each claim increments ``attempts``. Two
        processes claiming at once never get the same run. ``run_id`` claims only that run.
        """
        if not owner:
            raise LedgerError("claim needs a non-empty owner (e.g. host:pid)")
        if lease_s <= 0 or limit < 1:
            raise LedgerError(f"claim needs lease_s > 0 and limit >= 1, got {lease_s}, {limit}")
        now = utcnow()
        until = now + timedelta(seconds=lease_s)
        with self._translate("claim runs"), self._write() as conn:
            query = (
                select(runs.c.id, runs.c.state, runs.c.owner, runs.c.attempts)
                .where(
                    runs.c.state.in_(UNFINISHED),
                    or_(runs.c.lease_until.is_(None), runs.c.lease_until < now),
                    *([runs.c.id == run_id] if run_id is not None else []),
                )
                .order_by(runs.c.created_at, runs.c.id)
                .limit(limit)
            )
            if self._pg:
                query = query.with_for_update(skip_locked=True)
            picked = conn.execute(query).all()
            if not picked:
                return []
            ids = [row.id for row in picked]
            conn.execute(
                update(runs)
                .where(runs.c.id.in_(ids))
                .values(
                    owner=owner, lease_until=until, attempts=runs.c.attempts + 1, updated_at=now
                )
            )
            for row in picked:
                if row.state != RunState.QUEUED.value:
                    self._take_over_stage(conn, row, owner, now)
            rows = conn.execute(
                select(runs).where(runs.c.id.in_(ids)).order_by(runs.c.created_at, runs.c.id)
            ).all()
        return [run_from_row(row) for row in rows]

    def claim_run(self, run_id: str, owner: str, lease_s: float = 60.0) -> Run | None:
        """Claim one given run (for `autopilot run`); None if it is final or leased."""
        claimed = self.claim(owner, lease_s, run_id=run_id)
        return claimed[0] if claimed else None

    @staticmethod
    def _take_over_stage(conn: Connection, row: Any, owner: str, now: datetime) -> None:
        """Close the dead owner's open stage and open the same stage for the new attempt."""
        conn.execute(
            update(run_stages)
            .where(run_stages.c.run_id == row.id, run_stages.c.ended_at.is_(None))
            .values(
                ended_at=now,
                outcome="abandoned",
                error=f"lease of {row.owner or 'a previous owner'} expired; resumed by {owner}",
            )
        )
        conn.execute(
            insert(run_stages).values(
                run_id=row.id, state=row.state, attempt=row.attempts + 1, started_at=now
            )
        )

    def renew(self, run_id: str, owner: str, lease_s: float) -> bool:
        """Extend ``owner``'s lease; False if the run is no longer held by ``owner``."""
        now = utcnow()
        with self._translate("renew a lease"), self._write(durable=False) as conn:
            result = conn.execute(
                update(runs)
                .where(runs.c.id == run_id, runs.c.owner == owner, runs.c.state.in_(UNFINISHED))
                .values(lease_until=now + timedelta(seconds=lease_s))
            )
            return bool(result.rowcount == 1)

    def release(self, run_id: str, owner: str) -> None:
        """Give an unfinished run back so any process may claim it now (no-op if not held)."""
        with self._translate("release a run"), self._write() as conn:
            conn.execute(
                update(runs)
                .where(runs.c.id == run_id, runs.c.owner == owner, runs.c.state.in_(UNFINISHED))
                .values(owner=None, lease_until=None, updated_at=utcnow())
            )

    def claim_alert(self, key: str) -> bool:
        """Note that the alert `key` is being sent; False when it already was, by this
        process before a restart or by another instance. Keys over 300 characters are
        stored as their SHA-256; keys older than `ALERT_MEMORY` are forgotten (an alert's key
        names its run or round). Not waited onto the disk: a power cut may let one alert go
        out twice, never stop one."""
        stored = key if len(key) <= 300 else "sha256:" + hashlib.sha256(key.encode()).hexdigest()
        now = utcnow()
        row = {"key": stored, "sent_at": now}
        with self._translate("note an alert"), self._write(durable=False) as conn:
            conn.execute(delete(alerts_sent).where(alerts_sent.c.sent_at < now - ALERT_MEMORY))
            if self._pg:  # psycopg reports no row count for this INSERT: RETURNING says
                statement = postgresql.insert(alerts_sent).values(row).on_conflict_do_nothing(
                    index_elements=["key"]).returning(alerts_sent.c.key)
                return conn.execute(statement).first() is not None
            inserted = conn.execute(sqlite.insert(alerts_sent).values(row).on_conflict_do_nothing(
                index_elements=["key"]))
            return bool(inserted.rowcount == 1)

    # -- state changes -----------------------------------------------------------------------

    def advance(
        self,
        run_id: str,
        state: RunState,
        *,
        owner: str | None = None,
        error: str | None = None,
        submission_id: str | None = None,
        detail: dict[str, Any] | None = None,
        log: tuple[str, str] | None = None,
        via: RunState | None = None,
        round_number: int | None = None,
    ) -> Run:
        """Move a run to ``state``; committed before it returns.

        ``owner``, when given, must still hold the run (else the lease was lost).
        ``detail`` is merged into the run's detail. The run's ``error`` describes its
        current state: set from ``error``, cleared by a move that gives none.
        ``log``: a ``(level, message)`` line for the run's log, in the same transaction.
        ``via``: a state passed through on the way, recorded as a stage that starts and ends
        now (e.g. ``VALIDATING``, done on the worker, on the way from ``PREDICTING`` to
        ``UPLOADING``): one transaction instead of two.
        ``round_number``: the round a run recorded without one is for, once known (a webhook
        whose round could not be read runs the current round); ignored when it has one.
        """
        [after] = self.advance_many([Change(run_id, RunState(state), owner, error,
                                            submission_id, detail, log, via, round_number)])
        if isinstance(after, LedgerError):
            raise after
        return after

    def advance_many(self, changes: Sequence[Change]) -> list[Run | LedgerError]:
        """Several state changes in one transaction, each checked as ``advance`` checks it;
        committed before returning. One result per change, in order: the run after it, or
        the LedgerError that change alone met (a refused change does not fail the others).

        For the changes that come together (a round's data ready for all its runs at once):
        one commit and one thread hop instead of one each.
        """
        if not changes:
            return []
        now = utcnow()
        durable = any(_durable(change) for change in changes)
        try:
            action = "advance a run" if len(changes) == 1 else "advance runs"
            with self._translate(action), self._write(durable=durable) as conn:
                return apply_changes(conn, changes, now, self._pg)
        except LedgerError as exc:  # the transaction failed: none of them was kept
            return [exc] * len(changes)

    # -- logs --------------------------------------------------------------------------------

    def log(self, run_id: str, level: str, message: str) -> None:
        """Append a line to a run's log. Never put secrets in ``message``.

        ``level``: debug, info, warning or error. A message longer than ``MAX_LOG_MESSAGE``
        characters is cut there. Raises LedgerError for an unknown level or run.
        """
        line = log_row(run_id, level, message)
        with self._translate(f"log for run {run_id}"):
            try:
                with self._write(durable=False) as conn:
                    conn.execute(insert(run_logs).values(at=utcnow(), **line))
            except IntegrityError as exc:
                raise LedgerError(f"cannot log for run {run_id}: no such run") from exc

    # -- predictions -------------------------------------------------------------------------

    def predictions(self, run_id: str) -> bytes | None:
        """The CSV kept for the run by a state change carrying it (`Change.predictions`), or
        None (none kept, or forgotten after `PREDICTIONS_MEMORY`)."""
        with self._translate(f"read predictions of run {run_id}"), self.engine.connect() as conn:
            data = conn.scalar(select(run_predictions.c.csv_zlib)
                               .where(run_predictions.c.run_id == run_id))
        return None if data is None else zlib.decompress(data)


def _durable(change: Change) -> bool:
    """Final states, retries and holds are committed to disk; a lost intermediate stage
    (power cut) only makes a resumed run redo that stage, and uploads are checked anyway."""
    return change.state.is_final or change.state in (RunState.QUEUED, RunState.HELD)
