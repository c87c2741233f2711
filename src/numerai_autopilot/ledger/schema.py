"""The ledger's tables as they are after the latest migration (see migrations.py).

Queries use these definitions; the migrations build the same tables step by step, and a test
checks that the two agree.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on SQLite (stored as naive UTC text) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given to the ledger; use UTC")
        value = value.astimezone(UTC)
        # SQLite compares the stored text, so every value must be naive UTC in one format.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        # SQLite gives back naive UTC, PostgreSQL aware datetimes.
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("applied_at", UTCDateTime, nullable=False),
    Column("description", Text, nullable=False),
)

runs = Table(
    "runs",
    metadata,
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
    # v2
    Column("close_time", UTCDateTime, nullable=True),
    Column("detail", JSON, nullable=False, server_default=text("'{}'")),
    Column("webhook_body", Text, nullable=True),  # v6
    UniqueConstraint("model_id", "trigger_id", name="uq_runs_model_trigger"),
    Index("ix_runs_state_created", "state", "created_at"),
    Index("ix_runs_round_model", "round_number", "model_id"),
    Index("ix_runs_created", "created_at"),  # v2: newest-first listings
)

run_stages = Table(
    "run_stages",
    metadata,
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

run_logs = Table(  # v2
    "run_logs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(36), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("level", String(10), nullable=False),
    Column("message", Text, nullable=False),
    Index("ix_run_logs_run", "run_id", "id"),
)

alerts_sent = Table(  # v4: an alert key is sent once, across restarts and instances
    "alerts_sent",
    metadata,
    Column("key", String(300), primary_key=True),
    Column("sent_at", UTCDateTime, nullable=False),
)

run_predictions = Table(  # v8: a run's validated CSV, for a held run's later upload and blends
    "run_predictions",
    metadata,
    Column("run_id", String(36), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("kept_at", UTCDateTime, nullable=False),
    Column("rows", Integer, nullable=False),
    Column("csv_zlib", LargeBinary, nullable=False),
    Index("ix_run_predictions_kept", "kept_at"),
)
