"""Held runs on a real ledger: nothing claims them, a person's approval queues them again
until the round's close, after which they fail; the round gets no second run meanwhile."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from numerai_autopilot.errors import LedgerError
from numerai_autopilot.ledger import Change, Ledger, NewRun, Run, RunState
from numerai_autopilot.runs.held import NotApprovable, approve, expire_held, hold_until

OWNER = "test:1"


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger.from_url(f"sqlite:///{tmp_path / 'ledger.db'}") as led:
        led.migrate()
        yield led


def _new(source: str = "webhook", trigger: str | None = None) -> NewRun:
    return NewRun("alpha", "model-alpha", 8, 512, trigger or str(uuid.uuid4()), "v5.3",
                  is_test=False, source=source)


def held_run(ledger: Ledger, until: float) -> Run:
    run, _ = ledger.record(_new())
    (run,) = ledger.claim(OWNER)
    for state in (RunState.DOWNLOADING, RunState.PREDICTING):
        ledger.advance(run.id, state, owner=OWNER)
    (held,) = ledger.advance_many([Change(
        run.id, RunState.HELD, owner=OWNER, via=RunState.VALIDATING,
        detail={"hold_until": until, "health": {"suspect": ["corr_example 0.02 is below ..."]}},
        predictions=(b"id,prediction\nn1,0.5\nn2,0.6\n", 2))])
    assert isinstance(held, Run)
    return held


def test_a_held_run_waits_for_approval_then_is_claimed_again(ledger: Ledger) -> None:
    run = held_run(ledger, time.time() + 3600)
    assert run.state is RunState.HELD and run.owner is None and run.lease_until is None
    assert ledger.claim("other:2") == [] and ledger.unfinished() == []
    with pytest.raises(NotApprovable, match="only a held run"):
        approve(ledger, "no-such-run", "primary", "ada", time.time())
    approved = approve(ledger, run.id, "primary", "ada", time.time())
    assert approved.state is RunState.QUEUED
    assert approved.detail["approved"] == "primary" and approved.detail["approved_by"] == "ada"
    assert "approved by ada: submitting its kept predictions" in [
        line.message for line in ledger.logs(run.id)]
    (claimed,) = ledger.claim("other:2")
    assert claimed.id == run.id and claimed.detail["health"]["suspect"]
    with pytest.raises(NotApprovable):  # approved once only
        approve(ledger, run.id, "fallback", "bob", time.time())


def test_after_the_close_a_held_run_cannot_be_approved_and_fails(ledger: Ledger) -> None:
    close = time.time() + 60
    run = held_run(ledger, close)
    assert hold_until(run) == close
    assert expire_held(ledger, close - 1) == []
    with pytest.raises(NotApprovable, match="round 512 has closed"):
        approve(ledger, run.id, "primary", "ada", close + 1)
    (expired,) = expire_held(ledger, close + 1)
    assert expired.state is RunState.FAILED and expired.error is not None
    assert "not approved before round 512 closed" in expired.error
    assert "corr_example 0.02" in expired.error
    assert expire_held(ledger, close + 2) == []


def test_the_round_gets_no_second_run_while_one_is_held(ledger: Ledger) -> None:
    run = held_run(ledger, time.time() + 3600)
    watcher, created = ledger.record_if_absent_for_round(
        _new("watcher", trigger="watcher-round-512"))
    assert not created and watcher.id == run.id
    second, created = ledger.record(_new())
    assert created and second.state is RunState.SKIPPED
    assert second.error is not None and f"run {run.id} (held)" in second.error


def test_only_a_validated_run_can_be_held(ledger: Ledger) -> None:
    run, _ = ledger.record(_new())
    (run,) = ledger.claim(OWNER)
    ledger.advance(run.id, RunState.DOWNLOADING, owner=OWNER)
    with pytest.raises(LedgerError, match="cannot move from downloading to held"):
        ledger.advance(run.id, RunState.HELD, owner=OWNER)
