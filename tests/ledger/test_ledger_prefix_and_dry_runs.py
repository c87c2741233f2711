"""Run ids by their start (`get_by_prefix`), and dry runs: their own source and final state,
no round's runs, and the migration that turns the old skipped dry runs into them."""

from __future__ import annotations

from collections import Counter

import pytest
from ledger_helpers import new_run
from sqlalchemy import text

from numerai_autopilot.errors import AmbiguousRunId, LedgerError
from numerai_autopilot.ledger import Ledger, RunState, own_trigger_id


def test_a_run_is_found_by_its_id_or_a_start_no_other_id_has(ledger: Ledger) -> None:
    # 17 uuid4 ids: two of them share their first hex digit
    ids = [ledger.record(new_run(round_number=500 + i))[0].id for i in range(17)]
    for run_id in ids[:3]:
        for prefix in (run_id, run_id[:13], run_id[:8]):
            found = ledger.get_by_prefix(prefix)
            assert found is not None and found.id == run_id, prefix
    shared, count = Counter(run_id[0] for run_id in ids).most_common(1)[0]
    assert count > 1
    with pytest.raises(AmbiguousRunId, match=f"run id '{shared}' is the start of {count} runs"):
        ledger.get_by_prefix(shared)
    assert ledger.get_by_prefix("zz") is None  # not a hex digit: no run's id
    assert ledger.get_by_prefix("") is None
    # LIKE's wildcards are plain characters, and case counts (SQLite's LIKE ignores it)
    assert ledger.get_by_prefix("%") is None and ledger.get_by_prefix("_") is None
    letters = next(run_id for run_id in ids if run_id[0] in "abcdef")
    assert ledger.get_by_prefix(letters[:8].upper()) is None


def test_a_dry_run_ends_as_dry_run_and_is_no_rounds_run(ledger: Ledger) -> None:
    dry, created = ledger.record(new_run(source="dry-run", resubmit=True,
                                         trigger_id=own_trigger_id("dry-run")))
    assert created and dry.is_dry_run and dry.numerai_trigger_id is None
    assert ledger.claim_run(dry.id, "cli") is not None
    ledger.advance(dry.id, RunState.DOWNLOADING, owner="cli")
    ledger.advance(dry.id, RunState.PREDICTING, owner="cli")
    # while it runs, Numerai's webhook for the same round is queued, not skipped
    webhook, _ = ledger.record(new_run())
    assert webhook.state is RunState.QUEUED, webhook.error
    ended = ledger.advance(dry.id, RunState.DRY_RUN, owner="cli", via=RunState.VALIDATING,
                           detail={"dry_run": "/tmp/alpha-round512.csv", "rows": 500})
    assert ended.state is RunState.DRY_RUN and ended.is_final and ended.error is None
    stages = ledger.stages(dry.id)
    assert [(s.state.value, s.outcome) for s in stages][-2:] == [
        ("predicting", "validating"), ("validating", "dry-run")]
    with pytest.raises(LedgerError, match="final"):
        ledger.advance(dry.id, RunState.QUEUED)
    # the round watcher sees the webhook's run, not the dry run
    watcher, created = ledger.record_if_absent_for_round(
        new_run(source="watcher", trigger_id=own_trigger_id("watcher", 512)))
    assert not created and watcher.id == webhook.id
    assert ledger.counts_by_state()[RunState.DRY_RUN] == 1


def test_a_dry_run_alone_does_not_stop_the_watcher(ledger: Ledger) -> None:
    dry, _ = ledger.record(new_run(source="dry-run", resubmit=True,
                                   trigger_id=own_trigger_id("dry-run")))
    watcher, created = ledger.record_if_absent_for_round(
        new_run(source="watcher", trigger_id=own_trigger_id("watcher", 512)))
    assert created and watcher.id != dry.id and watcher.state is RunState.QUEUED


def test_migration_7_makes_the_old_skipped_dry_runs_dry_runs(ledger_url: str) -> None:
    with Ledger.from_url(ledger_url) as ledger:
        ledger.migrate(target=6)
        old_dry, _ = ledger.record(new_run(source="manual", resubmit=True))
        skipped, _ = ledger.record(new_run(source="manual", round_number=513))
        for run, detail in ((old_dry, {"dry_run": "/p/alpha-round512.csv"}), (skipped, {})):
            ledger.claim_run(run.id, "cli")
            ledger.advance(run.id, RunState.SKIPPED, owner="cli", detail=detail,
                           error=None if detail else "round 513 already submitted")
        ledger.migrate()
        after = ledger.get(old_dry.id)
        assert after is not None and after.state is RunState.DRY_RUN and after.is_dry_run
        assert after.detail == {"dry_run": "/p/alpha-round512.csv"}
        assert ledger.stages(old_dry.id)[-1].outcome == "dry-run"
        untouched = ledger.get(skipped.id)
        assert untouched is not None and untouched.state is RunState.SKIPPED
        assert untouched.source == "manual"
        with ledger.engine.connect() as conn:
            described = conn.scalar(text("SELECT description FROM schema_version "
                                         "WHERE version = 7"))
        assert "dry" in str(described)
