"""Which ledger writes wait for the disk: acceptance, claims and final states do."""

from __future__ import annotations

from pathlib import Path

import pytest

from numerai_autopilot.ledger import Ledger
from numerai_autopilot.ledger._engine import write_transaction


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
