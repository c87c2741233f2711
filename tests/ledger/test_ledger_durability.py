"""Which ledger writes wait for the disk: acceptance, claims and final states do."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from numerai_autopilot.ledger import Ledger, NewRun
from numerai_autopilot.ledger._engine import check_sqlite_json, write_transaction


@pytest.mark.parametrize(("durable", "level"), [(True, 2), (False, 1)])  # FULL, NORMAL
def test_sqlite_write_transactions_set_their_own_sync_level(
    tmp_path: Path, durable: bool, level: int
) -> None:
    ledger = Ledger.from_url(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.migrate()
    # Alternate kinds on the same pooled connection: each transaction sets its own level.
    for kind in (not durable, durable):
        with write_transaction(ledger.engine, durable=kind) as conn:
            seen = conn.exec_driver_sql("PRAGMA synchronous").scalar()
    assert seen == level
    ledger.close()


def test_recording_runs_never_checkpoints_the_wal_and_the_next_other_write_does(
        tmp_path: Path) -> None:
    # A checkpoint copies the WAL into the database file: only then does the file grow.
    path = tmp_path / "ledger.db"
    ledger = Ledger.from_url(f"sqlite:///{path}")
    ledger.migrate()
    before = path.stat().st_size
    for round_number in range(1, 41):  # about 15 take the WAL past 1000 pages of 4 KiB
        ledger.record_many([NewRun(f"m{i}", f"id-{i}", 8, round_number, f"t{round_number}-{i}",
                                   "v5.0", False, "webhook") for i in range(200)])
    assert Path(f"{path}-wal").stat().st_size > 5 * 1024 * 1024
    assert path.stat().st_size == before
    run = ledger.runs(limit=1)[0]
    ledger.log(run.id, "INFO", "a line")  # a write that may checkpoint
    assert path.stat().st_size > before + 1024 * 1024
    assert len(ledger.runs(limit=10_000)) == 200 * round_number
    ledger.close()


def test_an_sqlite_without_json_functions_is_refused_with_what_to_do(tmp_path: Path) -> None:
    def without_json(database: str) -> sqlite3.Connection:
        # An SQLite built without JSON cannot be installed here: deny json_each instead.
        conn = sqlite3.connect(database)
        conn.set_authorizer(lambda action, table, *_: (
            sqlite3.SQLITE_DENY if table == "json_each" else sqlite3.SQLITE_OK))
        return conn

    check_sqlite_json()  # this machine's SQLite has them
    with pytest.raises(ValueError, match="no JSON functions.*SQLite 3.38 or later"):
        check_sqlite_json(without_json)
