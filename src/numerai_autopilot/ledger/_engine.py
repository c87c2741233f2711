"""Engines for the ledger: SQLite tuned for a durable single writer, PostgreSQL pooled.

SQLite: WAL (readers never block the writer), ``synchronous=FULL`` (a commit is on disk before
the webhook is answered), ``busy_timeout`` (another process holding the write lock is waited
for, not an error), and write transactions opened with ``BEGIN IMMEDIATE`` so a transaction
that reads then writes takes the write lock first and cannot deadlock on the upgrade.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.engine import URL

WRITE_OPTION = "ledger_write"
DURABLE_OPTION = "ledger_durable"


def engine_from_url(
    url: str | URL,
    *,
    busy_timeout_s: float = 10.0,
    pool_size: int = 5,
    max_overflow: int = 10,
) -> Engine:
    """An engine for ``sqlite:///path`` (the parent directory is created) or PostgreSQL."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            raise ValueError(
                f"ledger URL {parsed.render_as_string(hide_password=True)!r} is not a file; "
                "use sqlite:///path/to/ledger.db so runs survive a restart"
            )
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        # A batch of runs is inserted as multi-row INSERTs (SQLAlchemy's "insertmanyvalues"):
        # 500 rows of ~20 columns stay under SQLite's 32,766 parameters a statement.
        engine = create_engine(parsed, pool_size=pool_size, max_overflow=max_overflow,
                               insertmanyvalues_page_size=500)
        configure_sqlite(engine, busy_timeout_s=busy_timeout_s)
        return engine
    return create_engine(parsed, pool_pre_ping=True, pool_size=pool_size, max_overflow=max_overflow)


def configure_sqlite(engine: Engine, *, busy_timeout_s: float = 10.0) -> None:
    """Install the pragmas and the BEGIN handling on a SQLite engine (idempotent per engine)."""
    if engine.dialect.name != "sqlite" or event.contains(engine, "begin", _on_begin):
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # pysqlite's own implicit BEGIN would be DEFERRED; we emit BEGIN in _on_begin instead.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            _use_wal(cursor, busy_timeout_s)
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    event.listen(engine, "begin", _on_begin)


def _use_wal(cursor: Any, busy_timeout_s: float) -> None:
    """Switch the file to WAL once (it persists). Several processes opening a new file at
    once can see "database is locked" here without the busy handler being called: retry."""
    if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
        return
    deadline = time.monotonic() + busy_timeout_s
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _on_begin(conn: Connection) -> None:
    options = conn.get_execution_options()
    if options.get(WRITE_OPTION, False):
        # Per transaction, since pooled connections are shared by every kind of write.
        durable = options.get(DURABLE_OPTION, True)
        conn.exec_driver_sql(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")


@contextmanager
def write_transaction(engine: Engine, *, durable: bool = True) -> Iterator[Connection]:
    """A transaction that will write: ``BEGIN IMMEDIATE`` on SQLite, plain on PostgreSQL.

    ``durable=False`` commits without waiting for the disk (SQLite ``synchronous=NORMAL``
    in WAL mode, PostgreSQL ``synchronous_commit=off``): still atomic and crash-safe for
    the process, but a power cut may lose the last such commits. The ledger uses it only
    for steps a resumed run redoes safely (intermediate stages, log lines, lease renewals).
    Commits on leaving normally, rolls back on an exception.
    """
    with engine.connect() as conn:
        conn.execution_options(**{WRITE_OPTION: True, DURABLE_OPTION: durable})
        with conn.begin():
            if not durable and is_postgres(engine):
                conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
            yield conn


def is_postgres(engine: Engine) -> bool:
    """Whether `engine` is PostgreSQL (else SQLite, the only other database supported)."""
    return engine.dialect.name == "postgresql"
