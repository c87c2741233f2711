from __future__ import annotations

import itertools

import pytest

from numerai_autopilot.ledger import (
    FINAL_STATES,
    PIPELINE,
    UNFINISHED_STATES,
    RunState,
    can_transition,
)

S = RunState


def test_final_states() -> None:
    assert {s for s in S if s.is_final} == {S.SUBMITTED, S.FAILED, S.SKIPPED, S.DRY_RUN} \
        == FINAL_STATES
    assert S("queued") is S.QUEUED and isinstance(S.QUEUED, str) and str(S.QUEUED) == "queued"


@pytest.mark.parametrize("current,target", list(itertools.pairwise(PIPELINE)))
def test_forward_one_step_is_legal(current: RunState, target: RunState) -> None:
    assert can_transition(current, target)


@pytest.mark.parametrize("current", [s for s in S if not s.is_final and s is not S.HELD])
def test_unfinished_may_fail_skip_end_dry_retry_or_resume(current: RunState) -> None:
    for target in (S.FAILED, S.SKIPPED, S.DRY_RUN, S.QUEUED, current):
        assert can_transition(current, target)


@pytest.mark.parametrize(
    "current,target",
    [
        (S.QUEUED, S.PREDICTING),  # no skipping stages
        (S.QUEUED, S.SUBMITTED),
        (S.DOWNLOADING, S.UPLOADING),
        (S.VALIDATING, S.SUBMITTED),
        (S.PREDICTING, S.DOWNLOADING),  # no going back except through queued
        (S.UPLOADING, S.VALIDATING),
        (S.SUBMITTED, S.QUEUED),  # final
        (S.SUBMITTED, S.FAILED),
        (S.SKIPPED, S.QUEUED),
        (S.SKIPPED, S.SKIPPED),
        (S.DRY_RUN, S.QUEUED),  # a dry run is final: run it again as a new one
        (S.DRY_RUN, S.UPLOADING),
        (S.FAILED, S.FAILED),
        (S.FAILED, S.DOWNLOADING),
    ],
)
def test_illegal(current: RunState, target: RunState) -> None:
    assert not can_transition(current, target)


def test_failed_may_be_queued_again() -> None:
    assert can_transition(S.FAILED, S.QUEUED)


def test_held_is_entered_from_validating_and_left_by_a_person_or_the_close() -> None:
    assert can_transition(S.VALIDATING, S.HELD)
    assert [s for s in S if can_transition(s, S.HELD)] == [S.VALIDATING]
    assert {s for s in S if can_transition(S.HELD, s)} == {S.QUEUED, S.FAILED, S.SKIPPED}
    assert not S.HELD.is_final and S.HELD not in UNFINISHED_STATES  # nothing claims it
