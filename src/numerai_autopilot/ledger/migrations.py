"""Versioned schema: an ordered list of steps, each applied once, in its own transaction.

The ``schema_version`` table holds one row per applied step. ``migrate`` is safe when several
processes call it at once: each step runs under a lock (a PostgreSQL transaction-scoped
advisory lock; on SQLite the ``BEGIN IMMEDIATE`` write lock) and re-reads the version first.
Both databases run DDL inside transactions, so a step that fails leaves no trace.

Steps are frozen history: they describe the tables as they were at that version, never
``schema.py``. To change the schema, append a step and update ``schema.py`` to match.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    Engine,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.types import TypeEngine

from numerai_autopilot.errors import LedgerError
from numerai_autopilot.ledger._engine import is_postgres, write_transaction
from numerai_autopilot.ledger.records import utcnow
from numerai_autopilot.ledger.schema import UTCDateTime, schema_version


@dataclass(frozen=True, slots=True)
class Step:
    """One schema change: `apply` runs in the migration's transaction, then `version` is
    recorded with its `description`."""

    version: int
    description: str
    apply: Callable[[Connection], None]


def _v1_initial(conn: Connection) -> None:
    md = MetaData()
    Table(
        "runs",
        md,
        Column("id", String(36), primary_key=True),
        Column("model_name", String(200), nullable=False),
        Column("model_id", String(100), nullable=False),
        Column("tournament", Integer, nullable=False),
        Column("round_number", Integer, nullable=True),
        Column("trigger_id", String(200), nullable=False),
        Column("data_version", String(50), nullable=False),
        Column("is_test", Boolean, nullable=False),
        Column("source", String(20), nullable=False),
        Column("resubmit", Boolean, nullable=False),
        Column("state", String(20), nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("error", Text, nullable=True),
        Column("submission_id", String(100), nullable=True),
        Column("created_at", UTCDateTime, nullable=False),
        Column("updated_at", UTCDateTime, nullable=False),
        Column("owner", String(200), nullable=True),
        Column("lease_until", UTCDateTime, nullable=True),
        UniqueConstraint("model_id", "trigger_id", name="uq_runs_model_trigger"),
        Index("ix_runs_state_created", "state", "created_at"),
        Index("ix_runs_model_round", "model_id", "round_number"),
    )
    Table(
        "run_stages",
        md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("run_id", String(36), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        Column("state", String(20), nullable=False),
        Column("attempt", Integer, nullable=False),
        Column("started_at", UTCDateTime, nullable=False),
        Column("ended_at", UTCDateTime, nullable=True),
        Column("outcome", String(20), nullable=True),
        Column("error", Text, nullable=True),
        Index("ix_run_stages_run", "run_id", "id"),
    )
    md.create_all(conn)


def _v2_deadlines_detail_logs(conn: Connection) -> None:
    _add_column(conn, "runs", "close_time", UTCDateTime(), "NULL")
    _add_column(conn, "runs", "detail", JSON(), "NOT NULL DEFAULT '{}'")
    md = MetaData()
    runs = Table(
        "runs",
        md,
        Column("id", String(36), primary_key=True),
        Column("created_at", UTCDateTime, nullable=False),
    )
    Index("ix_runs_created", runs.c.created_at).create(conn)
    Table(
        "run_logs",
        md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("run_id", String(36), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        Column("at", UTCDateTime, nullable=False),
        Column("level", String(10), nullable=False),
        Column("message", Text, nullable=False),
        Index("ix_run_logs_run", "run_id", "id"),
    ).create(conn)


def _v3_trigger_index(conn: Connection) -> None:
    runs = Table("runs", MetaData(), Column("id", String(36), primary_key=True),
                 Column("trigger_id", String(128), nullable=False))
    Index("ix_runs_trigger", runs.c.trigger_id).create(conn)


def _v4_alerts_sent(conn: Connection) -> None:
    Table(
        "alerts_sent",
        MetaData(),
        Column("key", String(300), primary_key=True),
        Column("sent_at", UTCDateTime, nullable=False),
    ).create(conn)


def _v5_burst_indexes(conn: Connection) -> None:
    runs = Table("runs", MetaData(), Column("id", String(36), primary_key=True),
                 Column("model_id", String(100), nullable=False),
                 Column("round_number", Integer, nullable=True),
                 Column("trigger_id", String(128), nullable=False))
    Index("ix_runs_model_round", runs.c.model_id, runs.c.round_number).drop(conn)
    Index("ix_runs_round_model", runs.c.round_number, runs.c.model_id).create(conn)
    Index("ix_runs_trigger", runs.c.trigger_id).drop(conn)


def _v6_webhook_body(conn: Connection) -> None:
    _add_column(conn, "runs", "webhook_body", Text(), "NULL")


def _v7_dry_runs(conn: Connection) -> None:
    # Dry runs were recorded as manual runs ending "skipped" with detail.dry_run (the CSV's
    # path): they become dry runs, their own source and final state.
    md = MetaData()
    runs = Table("runs", md, Column("id", String(36), primary_key=True),
                 Column("source", String(20)), Column("state", String(20)),
                 Column("detail", JSON))
    stages = Table("run_stages", md, Column("id", Integer, primary_key=True),
                   Column("run_id", String(36)), Column("outcome", String(20)))
    dry = select(runs.c.id).where(
        runs.c.state == "skipped", runs.c.detail["dry_run"].as_string().is_not(None))
    conn.execute(update(stages).where(stages.c.run_id.in_(dry), stages.c.outcome == "skipped")
                 .values(outcome="dry-run"))
    conn.execute(update(runs).where(runs.c.id.in_(dry)).values(state="dry-run", source="dry-run"))


def _v8_run_predictions(conn: Connection) -> None:
    md = MetaData()
    Table("runs", md, Column("id", String(36), primary_key=True))  # the key's target, as is
    Table(
        "run_predictions",
        md,
        Column("run_id", String(36), ForeignKey("runs.id", ondelete="CASCADE"),
               primary_key=True),
        Column("kept_at", UTCDateTime, nullable=False),
        Column("rows", Integer, nullable=False),
        Column("csv_zlib", LargeBinary, nullable=False),
        Index("ix_run_predictions_kept", "kept_at"),
    ).create(conn)


def _add_column(
    conn: Connection, table: str, column: str, type_: TypeEngine[Any], constraint: str
) -> None:
    ddl_type = type_.compile(dialect=conn.dialect)
    conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {ddl_type} {constraint}"))


STEPS: tuple[Step, ...] = (
    Step(1, "runs and run_stages", _v1_initial),
    Step(
        2,
        "runs.close_time, runs.detail, run_logs, index on runs.created_at",
        _v2_deadlines_detail_logs,
    ),
    Step(3, "index on runs.trigger_id (a burst of webhooks looks runs up by trigger)",
         _v3_trigger_index),
    Step(4, "alerts_sent (each alert once, across restarts and instances)", _v4_alerts_sent),
    Step(5, "index on runs (round_number, model_id) instead of (model_id, round_number), "
            "none on trigger_id: a burst's new runs are written together", _v5_burst_indexes),
    Step(6, "runs.webhook_body (the start of the webhook's body, for the record)",
         _v6_webhook_body),
    Step(7, "dry runs: source and state 'dry-run' instead of a skipped manual run",
         _v7_dry_runs),
    Step(8, "run_predictions (a run's validated CSV, kept for a held run and for blends)",
         _v8_run_predictions),
)
LATEST_VERSION = STEPS[-1].version


def current_version(engine: Engine) -> int:
    """The applied schema version, 0 for an empty database."""
    with engine.connect() as conn:
        if not engine.dialect.has_table(conn, schema_version.name):
            return 0
        return int(conn.scalar(select(func.max(schema_version.c.version))) or 0)


def migrate(engine: Engine, target: int | None = None) -> int:
    """Apply every step up to ``target`` (default: the latest); returns the version reached."""
    goal = LATEST_VERSION if target is None else target
    if not 0 <= goal <= LATEST_VERSION:
        raise LedgerError(f"ledger schema version {goal} does not exist (latest {LATEST_VERSION})")
    while True:
        with write_transaction(engine) as conn:
            if is_postgres(engine):
                conn.execute(
                    text(
                        "SELECT pg_advisory_xact_lock(hashtext("
                        "'numerai_autopilot.ledger.migrate:' || current_schema()))"
                    )
                )
            schema_version.create(conn, checkfirst=True)
            version = int(conn.scalar(select(func.max(schema_version.c.version))) or 0)
            if version > LATEST_VERSION:
                raise LedgerError(
                    f"the ledger database is at schema version {version} but this autopilot "
                    f"knows versions up to {LATEST_VERSION}; upgrade numerai-autopilot"
                )
            if version >= goal:
                return version
            step = STEPS[version]
            step.apply(conn)
            conn.execute(
                insert(schema_version).values(
                    version=step.version, applied_at=utcnow(), description=step.description
                )
            )
