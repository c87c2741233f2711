from __future__ import annotations

import pytest
from ledger_helpers import new_run

from numerai_autopilot.errors import LedgerError
from numerai_autopilot.ledger import MAX_LOG_MESSAGE, Ledger, RunState


def test_logs_page_by_id(ledger: Ledger) -> None:
    run, _ = ledger.record(new_run())
    other, _ = ledger.record(new_run(model_id="model-beta"))
    for i in range(25):
        ledger.log(run.id, "info", f"line {i}")
        ledger.log(other.id, "debug", f"other {i}")
    page1 = ledger.logs(run.id, limit=10)
    page2 = ledger.logs(run.id, after_id=page1[-1].id, limit=10)
    page3 = ledger.logs(run.id, after_id=page2[-1].id, limit=10)
    lines = page1 + page2 + page3
    assert [line.message for line in lines] == [f"line {i}" for i in range(25)]
    assert [len(p) for p in (page1, page2, page3)] == [10, 10, 5]
    assert ledger.logs(run.id, after_id=lines[-1].id) == []
    assert all(line.run_id == run.id and line.at.tzinfo is not None for line in lines)
    ids = [line.id for line in lines]
    assert ids == sorted(ids)


def test_levels_and_long_messages(ledger: Ledger) -> None:
    run, _ = ledger.record(new_run())
    ledger.log(run.id, "WARNING", "x" * (MAX_LOG_MESSAGE + 10))
    [line] = ledger.logs(run.id)
    assert line.level == "warning" and line.message.endswith("(truncated)")
    with pytest.raises(LedgerError, match="log level 'loud'"):
        ledger.log(run.id, "loud", "hello")


def test_log_for_an_unknown_run_is_refused(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="no such run"):
        ledger.log("missing", "info", "hello")
    assert ledger.logs("missing") == []


def test_a_move_and_its_log_line_commit_together(ledger: Ledger) -> None:
    run, _ = ledger.record(new_run())
    moved = ledger.advance(run.id, RunState.DOWNLOADING, log=("info", "fetching round 512"))
    assert moved.state is RunState.DOWNLOADING
    assert [(line.level, line.message) for line in ledger.logs(run.id)] == [
        ("info", "fetching round 512")]
    with pytest.raises(LedgerError, match="log level 'loud'"):
        ledger.advance(run.id, RunState.PREDICTING, log=("loud", "hello"))
    after = ledger.get(run.id)
    assert after is not None and after.state is RunState.DOWNLOADING  # neither was written
    assert len(ledger.logs(run.id)) == 1
