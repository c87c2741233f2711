"""`record_many`: a burst of webhooks recorded in one transaction, each run on its own."""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import event

from numerai_autopilot.errors import LedgerError
from numerai_autopilot.ledger import Ledger, NewRun, RunState


def webhook_run(trigger: str, model: str = "m1", round_number: int | None = 500) -> NewRun:
    return NewRun(model_name=model, model_id=f"id-{model}", tournament=8,
                  round_number=round_number, trigger_id=trigger, data_version="v5.3",
                  is_test=False, source="webhook")


def test_record_many_gives_one_result_per_run_in_order(tmp_path: Path) -> None:
    ledger = Ledger.from_url(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.migrate()
    first, _ = ledger.record(webhook_run("t0", model="m0"))
    results = ledger.record_many([
        webhook_run("t1"),                          # created
        webhook_run("t0", model="m0"),              # a repeated trigger: the existing run
        dataclasses.replace(webhook_run("t2"), trigger_id=""),  # invalid: its own error only
        webhook_run("t3", model="m3"),              # created
        webhook_run("t4"),                          # same model and round as t1, in progress: skipped
    ])
    assert len(results) == 5
    (r1, c1), (r0, c0), bad, (_, c3), (r4, c4) = results  # type: ignore[misc]
    assert c1 and c3 and not c0 and r0.id == first.id
    assert isinstance(bad, LedgerError) and "trigger_id is empty" in str(bad)
    assert c4 and r4.state is RunState.SKIPPED and r1.state is RunState.QUEUED
    assert {r.trigger_id for r in ledger.runs()} == {"t0", "t1", "t3", "t4"}
    ledger.close()


def test_a_trigger_id_shared_by_two_models_gives_each_its_own_run(ledger: Ledger) -> None:
    # runs are looked up by (model, trigger): the same trigger of another model is not theirs
    first, created = ledger.record(webhook_run("shared", model="m1"))
    [(second, created_too), (again, created_again)] = ledger.record_many(  # type: ignore[misc]
        [webhook_run("shared", model="m2"), webhook_run("shared", model="m1")])
    assert created and created_too and not created_again
    assert again.id == first.id and second.id != first.id and second.model_id == "id-m2"


def test_a_burst_reads_the_runs_table_through_its_indexes(tmp_path: Path) -> None:
    """The lookups `record_many` makes search indexes on SQLite: a scan of the runs table
    would cost more with every round recorded."""
    ledger = Ledger.from_url(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.migrate()
    selects: list[tuple[str, object]] = []

    def seen(_conn: object, _cursor: object, statement: str, parameters: object,
             _context: object, _many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            selects.append((statement, parameters))

    event.listen(ledger.engine, "before_cursor_execute", seen)
    ledger.record_many([webhook_run("t1", model="m1"), webhook_run("t2", model="m2")])
    event.remove(ledger.engine, "before_cursor_execute", seen)
    assert len(selects) == 2  # by (model, trigger), and by (model, round)
    raw = sqlite3.connect(tmp_path / "ledger.db")
    for statement, parameters in selects:
        plan = " / ".join(row[-1] for row in raw.execute(f"EXPLAIN QUERY PLAN {statement}",
                                                          parameters))  # type: ignore[arg-type]
        assert "USING INDEX" in plan and "SCAN runs" not in plan, plan
    raw.close()
    ledger.close()


def test_recorded_runs_read_back_as_they_were_answered(ledger: Ledger) -> None:
    """The burst's insert path converts values itself (SQLite): every field must read back
    as the run the webhook was answered with, stages included."""
    closes = datetime(2026, 11, 30, 13, 0, tzinfo=UTC)
    results = ledger.record_many(
        [webhook_run(f"rb{i}", model=f"rb{i % 7}", round_number=900 + i % 3) for i in range(40)]
        + [webhook_run("rb-test", round_number=None),
           dataclasses.replace(webhook_run("rb-close", model="rbc"), close_time=closes, resubmit=True),
           dataclasses.replace(webhook_run("rb-flag", model="rbf", round_number=None), is_test=True)])
    assert any(not isinstance(r, LedgerError) and r[0].close_time == closes for r in results)
    for outcome in results:
        assert not isinstance(outcome, LedgerError)
        run, created = outcome
        assert created and ledger.get(run.id) == run
        if run.state is RunState.SKIPPED:  # another run of its model and round is queued
            assert ledger.stages(run.id) == []
            continue
        (stage,) = ledger.stages(run.id)
        assert (stage.state, stage.attempt, stage.ended_at) == (RunState.QUEUED, 0, None)
        assert stage.started_at == run.created_at


def test_a_batch_larger_than_one_statement_is_recorded_whole(ledger: Ledger) -> None:
    """A batch's runs go in multi-row INSERTs of at most 500 rows: a larger one is split."""
    results = ledger.record_many([webhook_run(f"big{i}", model=f"big{i}") for i in range(1_100)])
    assert [r for r in results if isinstance(r, LedgerError) or not r[1]] == []
    assert sorted(r.trigger_id for r in ledger.runs(limit=2000)) == sorted(
        f"big{i}" for i in range(1_100))
