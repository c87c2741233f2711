"""Several runs' state changes in one transaction (`Ledger.advance_many`), and the pipeline's
`BatchAdvancer` that gathers the changes made in the same turn of the event loop."""

from __future__ import annotations

import asyncio

import pytest
from ledger_helpers import new_run

from numerai_autopilot.errors import LedgerError
from numerai_autopilot.ledger import Change, Ledger, Run, RunState
from numerai_autopilot.runs.recorder import BatchAdvancer

S = RunState


def _claimed(ledger: Ledger, count: int, owner: str = "w1") -> list[Run]:
    for i in range(count):
        ledger.record(new_run(model_name=f"m{i}", model_id=f"id-{i}"))
    claimed = ledger.claim(owner, limit=count)
    assert len(claimed) == count
    return claimed


def test_changes_are_made_as_advance_makes_them(ledger: Ledger) -> None:
    one, two = _claimed(ledger, 2)
    ledger.advance(one.id, S.DOWNLOADING, owner="w1")
    ledger.advance(one.id, S.PREDICTING, owner="w1")
    first, second = ledger.advance_many([
        Change(one.id, S.UPLOADING, owner="w1", via=S.VALIDATING, detail={"rows": 6720},
               log=("info", "validated 6720 rows")),
        Change(two.id, S.DOWNLOADING, owner="w1"),
    ])
    assert isinstance(first, Run) and isinstance(second, Run)
    assert first.state is S.UPLOADING and first.detail == {"rows": 6720}
    assert second.state is S.DOWNLOADING
    assert ledger.get(one.id) == first and ledger.get(two.id) == second
    stages = ledger.stages(one.id)
    assert [(s.state, s.outcome) for s in stages] == [
        (S.QUEUED, "downloading"), (S.DOWNLOADING, "predicting"),
        (S.PREDICTING, "validating"), (S.VALIDATING, "uploading"), (S.UPLOADING, None)]
    assert stages[-2].started_at == stages[-2].ended_at == stages[-1].started_at
    assert [(s.state, s.outcome) for s in ledger.stages(two.id)] == [
        (S.QUEUED, "downloading"), (S.DOWNLOADING, None)]
    assert [line.message for line in ledger.logs(one.id)] == ["validated 6720 rows"]


@pytest.mark.parametrize("refused,why", [
    (Change("", S.PREDICTING, owner="w2"), "held by w1, not w2"),
    (Change("", S.SUBMITTED, owner="w1"), "cannot move from downloading to submitted"),
    (Change("", S.UPLOADING, owner="w1", via=S.VALIDATING),
     "cannot move from downloading to validating"),
    # the passage is allowed, the move after it is not: nothing of either is written
    (Change("", S.SUBMITTED, owner="w1", via=S.PREDICTING),
     "cannot move from predicting to submitted"),
    (Change("", S.PREDICTING, owner="w1", log=("loud", "x")), "log level 'loud'"),
])
def test_a_refused_change_leaves_no_trace_and_fails_only_itself(
    ledger: Ledger, refused: Change, why: str
) -> None:
    runs = _claimed(ledger, 3)
    for run in runs:
        ledger.advance(run.id, S.DOWNLOADING, owner="w1")
    bad = runs[1]
    before = (ledger.get(bad.id), ledger.stages(bad.id), ledger.logs(bad.id))
    results = ledger.advance_many([
        Change(runs[0].id, S.PREDICTING, owner="w1"),
        Change(bad.id, refused.state, owner=refused.owner, via=refused.via, log=refused.log),
        Change(runs[2].id, S.PREDICTING, owner="w1"),
    ])
    assert isinstance(results[1], LedgerError) and why in str(results[1])
    assert (ledger.get(bad.id), ledger.stages(bad.id), ledger.logs(bad.id)) == before
    for run, result in ((runs[0], results[0]), (runs[2], results[2])):
        assert isinstance(result, Run) and result.state is S.PREDICTING
        assert ledger.get(run.id) == result


def test_an_unknown_run_fails_only_its_own_change(ledger: Ledger) -> None:
    [run] = _claimed(ledger, 1)
    missing, moved = ledger.advance_many([Change("no-such-run", S.DOWNLOADING),
                                          Change(run.id, S.DOWNLOADING, owner="w1")])
    assert isinstance(missing, LedgerError) and "no-such-run not found" in str(missing)
    assert isinstance(moved, Run) and moved.state is S.DOWNLOADING
    assert ledger.advance_many([]) == []


async def test_changes_made_together_share_one_transaction(ledger: Ledger) -> None:
    runs = _claimed(ledger, 20)
    advancer = BatchAdvancer(ledger)
    moved = await asyncio.gather(*(
        advancer.advance(Change(run.id, S.DOWNLOADING, owner="w1")) for run in runs))
    assert [run.state for run in moved] == [S.DOWNLOADING] * 20
    # one transaction, one clock reading: every run entered its stage at the same instant
    started = {ledger.stages(run.id)[-1].started_at for run in runs}
    assert len(started) == 1
    assert {run.updated_at for run in moved} == started


async def test_the_advancer_hands_each_caller_its_own_outcome(ledger: Ledger) -> None:
    runs = _claimed(ledger, 3)
    advancer = BatchAdvancer(ledger)
    outcomes = await asyncio.gather(
        advancer.advance(Change(runs[0].id, S.DOWNLOADING, owner="w1")),
        advancer.advance(Change(runs[1].id, S.SUBMITTED, owner="w1", submission_id="s-1")),
        advancer.advance(Change(runs[2].id, S.DOWNLOADING, owner="w1")),
        return_exceptions=True,
    )
    assert isinstance(outcomes[1], LedgerError)
    assert "cannot move from queued to submitted" in str(outcomes[1])
    assert [o.state for o in (outcomes[0], outcomes[2]) if isinstance(o, Run)] == [
        S.DOWNLOADING, S.DOWNLOADING]
    assert ledger.get(runs[1].id).state is S.QUEUED  # type: ignore[union-attr]
    # later changes go on in a batch of their own
    after = await advancer.advance(Change(runs[0].id, S.PREDICTING, owner="w1"))
    assert after.state is S.PREDICTING


def test_a_run_changed_twice_in_one_batch_moves_on_in_order(ledger: Ledger) -> None:
    one, two = _claimed(ledger, 2)
    results = ledger.advance_many([
        Change(one.id, S.DOWNLOADING, owner="w1"),
        Change(two.id, S.DOWNLOADING, owner="w1"),
        Change(one.id, S.PREDICTING, owner="w1", log=("info", "predicting")),
        Change(one.id, S.UPLOADING, owner="w1", via=S.VALIDATING),
    ])
    assert [r.state for r in results if isinstance(r, Run)] == [
        S.DOWNLOADING, S.DOWNLOADING, S.PREDICTING, S.UPLOADING]
    assert [(s.state, s.outcome) for s in ledger.stages(one.id)] == [
        (S.QUEUED, "downloading"), (S.DOWNLOADING, "predicting"),
        (S.PREDICTING, "validating"), (S.VALIDATING, "uploading"), (S.UPLOADING, None)]
    assert ledger.get(one.id) == results[3]
    assert [line.message for line in ledger.logs(one.id)] == ["predicting"]


def test_final_and_queued_moves_release_the_run(ledger: Ledger) -> None:
    one, two = _claimed(ledger, 2)
    failed, queued = ledger.advance_many([
        Change(one.id, S.FAILED, owner="w1", error="the predictor raised"),
        Change(two.id, S.QUEUED, owner="w1", error="worker died; retrying once"),
    ])
    assert isinstance(failed, Run) and isinstance(queued, Run)
    assert failed.lease_until is None and failed.owner == "w1"
    assert failed.error == "the predictor raised"
    assert queued.owner is None and queued.lease_until is None
    assert ledger.get(one.id) == failed and ledger.get(two.id) == queued
    assert ledger.stages(one.id)[-1].error == "the predictor raised"
    assert [run.id for run in ledger.claim("w2")] == [two.id]  # claimable again at once
