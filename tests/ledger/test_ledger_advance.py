from __future__ import annotations

import itertools
import time

import pytest
from ledger_helpers import new_run

from numerai_autopilot.errors import LedgerError
from numerai_autopilot.ledger import Ledger, Run, RunState

S = RunState
FORWARD = (S.DOWNLOADING, S.PREDICTING, S.VALIDATING, S.UPLOADING)


def _claimed(ledger: Ledger, owner: str = "w1") -> Run:
    run, _ = ledger.record(new_run())
    [claimed] = ledger.claim(owner)
    assert claimed.id == run.id
    return claimed


def test_happy_path_records_stages_with_timings(ledger: Ledger) -> None:
    run = _claimed(ledger)
    for state in FORWARD:
        time.sleep(0.01)
        ledger.advance(run.id, state, owner="w1", detail={f"{state.value}_s": 0.01})
    time.sleep(0.01)
    done = ledger.advance(
        run.id, S.SUBMITTED, owner="w1", submission_id="sub-9", detail={"rows": 6720}
    )
    assert done.state is S.SUBMITTED and done.submission_id == "sub-9"
    assert done.lease_until is None and done.owner == "w1" and done.error is None
    assert done.detail == {
        "downloading_s": 0.01,
        "predicting_s": 0.01,
        "validating_s": 0.01,
        "uploading_s": 0.01,
        "rows": 6720,
    }
    assert ledger.get(run.id) == done
    stages = ledger.stages(run.id)
    assert [s.state for s in stages] == [S.QUEUED, *FORWARD]
    assert [s.attempt for s in stages] == [0, 1, 1, 1, 1]
    assert [s.outcome for s in stages] == [
        "downloading",
        "predicting",
        "validating",
        "uploading",
        "submitted",
    ]
    for stage, following in itertools.pairwise(stages):
        assert stage.ended_at == following.started_at
    for stage in stages[1:]:
        assert stage.duration_s is not None and stage.duration_s >= 0.009
    assert stages[-1].ended_at == done.updated_at


@pytest.mark.parametrize(
    "path,bad",
    [
        ((), S.PREDICTING),
        ((), S.SUBMITTED),
        ((S.DOWNLOADING, S.PREDICTING), S.DOWNLOADING),
        ((S.DOWNLOADING, S.PREDICTING, S.VALIDATING), S.SUBMITTED),
    ],
)
def test_illegal_moves_are_refused_and_change_nothing(
    ledger: Ledger, path: tuple[RunState, ...], bad: RunState
) -> None:
    run = _claimed(ledger)
    for state in path:
        ledger.advance(run.id, state)
    before = ledger.get(run.id)
    stages_before = ledger.stages(run.id)
    with pytest.raises(LedgerError, match=f"cannot move from .* to {bad.value}"):
        ledger.advance(run.id, bad, submission_id="x")
    assert ledger.get(run.id) == before
    assert ledger.stages(run.id) == stages_before


def test_passing_through_a_state_records_its_stage_in_the_same_move(ledger: Ledger) -> None:
    run = _claimed(ledger)
    for state in (S.DOWNLOADING, S.PREDICTING):
        ledger.advance(run.id, state, owner="w1")
    moved = ledger.advance(run.id, S.UPLOADING, owner="w1", via=S.VALIDATING,
                           detail={"validate_s": 0.004}, log=("info", "validated on the worker"))
    assert moved.state is S.UPLOADING and moved.detail == {"validate_s": 0.004}
    stages = ledger.stages(run.id)
    assert [s.state for s in stages] == [S.QUEUED, S.DOWNLOADING, S.PREDICTING, S.VALIDATING,
                                         S.UPLOADING]
    predicting, validating, uploading = stages[2:]
    assert predicting.outcome == "validating" and validating.outcome == "uploading"
    assert predicting.ended_at == validating.started_at == validating.ended_at
    assert validating.ended_at == uploading.started_at == moved.updated_at
    assert uploading.ended_at is None
    assert [line.message for line in ledger.logs(run.id)] == ["validated on the worker"]


@pytest.mark.parametrize(
    "path,via,to",
    [
        ((S.DOWNLOADING,), S.VALIDATING, S.UPLOADING),  # downloading cannot skip predicting
        ((S.DOWNLOADING, S.PREDICTING), S.VALIDATING, S.SUBMITTED),  # nor validating, uploading
    ],
)
def test_an_illegal_pass_through_changes_nothing(
    ledger: Ledger, path: tuple[RunState, ...], via: RunState, to: RunState
) -> None:
    run = _claimed(ledger)
    for state in path:
        ledger.advance(run.id, state)
    before, stages_before = ledger.get(run.id), ledger.stages(run.id)
    with pytest.raises(LedgerError, match="cannot move from"):
        ledger.advance(run.id, to, via=via, submission_id="x")
    assert ledger.get(run.id) == before
    assert ledger.stages(run.id) == stages_before


@pytest.mark.parametrize("final", [S.SUBMITTED, S.SKIPPED])
def test_final_states_cannot_change(ledger: Ledger, final: RunState) -> None:
    run = _claimed(ledger)
    if final is S.SUBMITTED:
        for state in FORWARD:
            ledger.advance(run.id, state)
    ledger.advance(run.id, final, submission_id="sub-1", error="dry run")
    for target in S:
        with pytest.raises(LedgerError, match="is final and cannot change"):
            ledger.advance(run.id, target, error="x", submission_id="y")


def test_failure_then_admin_rerun(ledger: Ledger) -> None:
    run = _claimed(ledger)
    ledger.advance(run.id, S.DOWNLOADING, owner="w1")
    failed = ledger.advance(run.id, S.FAILED, owner="w1", error="download cut after 3 retries")
    assert failed.error == "download cut after 3 retries" and failed.lease_until is None
    with pytest.raises(LedgerError, match="a failed run can only be queued again"):
        ledger.advance(run.id, S.DOWNLOADING)
    requeued = ledger.advance(run.id, S.QUEUED)  # admin: no owner
    assert requeued.state is S.QUEUED and requeued.error is None and requeued.owner is None
    [again] = ledger.claim("w2")
    assert again.id == run.id and again.attempts == 2
    ledger.advance(run.id, S.DOWNLOADING, owner="w2")
    stages = ledger.stages(run.id)
    assert [(s.state, s.attempt, s.outcome) for s in stages] == [
        (S.QUEUED, 0, "downloading"),
        (S.DOWNLOADING, 1, "failed"),
        (S.QUEUED, 1, "downloading"),
        (S.DOWNLOADING, 2, None),
    ]
    assert stages[1].error == "download cut after 3 retries"


def test_retry_from_a_stage_goes_through_queued(ledger: Ledger) -> None:
    run = _claimed(ledger)
    ledger.advance(run.id, S.DOWNLOADING, owner="w1")
    ledger.advance(run.id, S.PREDICTING, owner="w1")
    retried = ledger.advance(run.id, S.QUEUED, owner="w1", error="worker died; retrying")
    assert retried.owner is None and retried.error == "worker died; retrying"
    assert ledger.stages(run.id)[-2].error == "worker died; retrying"


def test_reentering_the_current_state_resumes_without_a_new_stage(ledger: Ledger) -> None:
    run = _claimed(ledger)
    ledger.advance(run.id, S.DOWNLOADING, owner="w1")
    again = ledger.advance(run.id, S.DOWNLOADING, owner="w1", detail={"resumed": True})
    assert again.detail == {"resumed": True}
    assert [s.state for s in ledger.stages(run.id)] == [S.QUEUED, S.DOWNLOADING]


def test_lost_lease_is_refused(ledger: Ledger) -> None:
    run = _claimed(ledger, owner="w1")
    with pytest.raises(LedgerError, match="held by w1, not w2: the lease was lost"):
        ledger.advance(run.id, S.DOWNLOADING, owner="w2")
    assert ledger.get(run.id).state is S.QUEUED  # type: ignore[union-attr]


def test_submitted_needs_a_submission_id_and_failed_a_reason(ledger: Ledger) -> None:
    run = _claimed(ledger)
    for state in FORWARD:
        ledger.advance(run.id, state)
    with pytest.raises(LedgerError, match="pass the submission id"):
        ledger.advance(run.id, S.SUBMITTED)
    with pytest.raises(LedgerError, match="say why it failed"):
        ledger.advance(run.id, S.FAILED)


def test_unknown_run(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="run nope not found"):
        ledger.advance("nope", S.DOWNLOADING)
    assert ledger.get("nope") is None
    assert ledger.stages("nope") == []


def test_detail_merges(ledger: Ledger) -> None:
    run = _claimed(ledger)
    ledger.advance(run.id, S.DOWNLOADING, detail={"a": 1, "nested": {"x": [1, 2]}})
    merged = ledger.advance(run.id, S.PREDICTING, detail={"a": 2, "fallback": False})
    assert merged.detail == {"a": 2, "nested": {"x": [1, 2]}, "fallback": False}


def test_listing_and_counts(ledger: Ledger) -> None:
    a, _ = ledger.record(new_run(model_name="alpha", model_id="m-a", round_number=1))
    b, _ = ledger.record(new_run(model_name="beta", model_id="m-b", round_number=1))
    c, _ = ledger.record(new_run(model_name="beta", model_id="m-b", round_number=2))
    ledger.advance(a.id, S.FAILED, error="boom")
    assert [r.id for r in ledger.runs()] == [c.id, b.id, a.id]
    assert [r.id for r in ledger.runs(limit=1)] == [c.id]
    assert [r.id for r in ledger.runs(model_name="beta")] == [c.id, b.id]
    assert [r.id for r in ledger.runs(round_number=1)] == [b.id, a.id]
    assert [r.id for r in ledger.runs(states=[S.FAILED])] == [a.id]
    assert [r.id for r in ledger.unfinished()] == [b.id, c.id]
    counts = ledger.counts_by_state()
    assert counts[S.QUEUED] == 2 and counts[S.FAILED] == 1 and counts[S.SUBMITTED] == 0
    assert set(counts) == set(S)
