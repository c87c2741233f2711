"""`record_many`: a burst of webhooks recorded in one transaction, each run on its own."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from numerai_autopilot.errors import LedgerError
from numerai_autopilot.ledger import Ledger, NewRun, RunState


def new(trigger: str, model: str = "m1", round_number: int | None = 500) -> NewRun:
    return NewRun(model_name=model, model_id=f"id-{model}", tournament=8,
                  round_number=round_number, trigger_id=trigger, data_version="v5.3",
                  is_test=False, source="webhook")


def test_record_many_gives_one_result_per_run_in_order(tmp_path: Path) -> None:
    ledger = Ledger.from_url(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.migrate()
    first, _ = ledger.record(new("t0", model="m0"))
    results = ledger.record_many([
        new("t1"),                          # created
        new("t0", model="m0"),              # a repeated trigger: the existing run
        dataclasses.replace(new("t2"), trigger_id=""),  # invalid: its own error only
        new("t3", model="m3"),              # created
        new("t4"),                          # same model and round as t1, in progress: skipped
    ])
    assert len(results) == 5
    (r1, c1), (r0, c0), bad, (_, c3), (r4, c4) = results  # type: ignore[misc]
    assert c1 and c3 and not c0 and r0.id == first.id
    assert isinstance(bad, LedgerError) and "trigger_id is empty" in str(bad)
    assert c4 and r4.state is RunState.SKIPPED and r1.state is RunState.QUEUED
    assert {r.trigger_id for r in ledger.runs()} == {"t0", "t1", "t3", "t4"}
    ledger.close()
