"""Database failures reach callers as LedgerError, with the driver's error as the cause."""

from __future__ import annotations

from pathlib import Path

import pytest
from ledger_helpers import new_run
from sqlalchemy.exc import SQLAlchemyError

from numerai_autopilot.errors import AutopilotError, LedgerError
from numerai_autopilot.ledger import Ledger


def test_unreachable_database_is_a_ledger_error() -> None:
    # port 9 (discard) on localhost: nothing listens, the connection is refused at once
    url = "postgresql+psycopg://postgres:hunter2@127.0.0.1:9/none"
    with Ledger.from_url(url) as ledger, pytest.raises(LedgerError) as info:
        ledger.ping()
    assert isinstance(info.value, AutopilotError)
    assert isinstance(info.value.__cause__, SQLAlchemyError)
    message = str(info.value)
    assert "could not ping" in message and "check the ledger URL" in message
    assert "hunter2" not in message  # the password never appears


def test_missing_schema_says_to_migrate(ledger_url: str) -> None:
    with (
        Ledger.from_url(ledger_url) as ledger,
        pytest.raises(LedgerError, match=r"run Ledger\.migrate\(\)") as info,
    ):
        ledger.record(new_run())
    assert isinstance(info.value.__cause__, SQLAlchemyError)


def test_sqlite_creates_the_parent_directory(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "ledger.db"
    with Ledger.from_url(f"sqlite:///{path}") as ledger:
        ledger.migrate()
        ledger.ping()
        with ledger.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000
    assert path.exists()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "nonsense://x"])
def test_unusable_urls(url: str) -> None:
    with pytest.raises(LedgerError, match="ledger URL"):
        Ledger.from_url(url)
