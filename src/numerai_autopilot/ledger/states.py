"""Run states and the transitions between them.

A run moves forward one stage at a time::

    queued -> downloading -> predicting -> validating -> uploading -> submitted

Any unfinished run may end as ``failed``, ``skipped`` or ``dry-run`` (a dry run wrote its
validated CSV instead of uploading) or go back to ``queued`` (a retry); a ``failed`` run may
be queued again by a person (an admin re-run). Re-entering the current
unfinished state is allowed: that is how a process resumes a stage after a crash.

A suspect run of a model with ``on_suspect = "hold"`` waits, validated and not uploaded, in
``held`` (entered from ``validating``)::

    validating -> held -> queued (a person approved it) | failed (the round closed) | skipped

A held run is neither final nor claimable: nothing resumes it but a person's approval.
"""

from __future__ import annotations

from enum import StrEnum


class RunState(StrEnum):
    """Where a run is. The value is what the ledger stores and the API shows."""

    QUEUED = "queued"
    DOWNLOADING = "downloading"
    PREDICTING = "predicting"
    VALIDATING = "validating"
    UPLOADING = "uploading"
    SUBMITTED = "submitted"
    FAILED = "failed"
    SKIPPED = "skipped"
    DRY_RUN = "dry-run"
    HELD = "held"

    @property
    def is_final(self) -> bool:
        """True for submitted, failed, skipped and dry-run: nothing more happens to the run."""
        return self in FINAL_STATES


FINAL_STATES: frozenset[RunState] = frozenset(
    {RunState.SUBMITTED, RunState.FAILED, RunState.SKIPPED, RunState.DRY_RUN}
)
# The ends any unfinished run may reach from any stage.
_ENDS: frozenset[RunState] = frozenset(
    {RunState.FAILED, RunState.SKIPPED, RunState.DRY_RUN, RunState.QUEUED}
)
# What a process claims and resumes: a held run waits for a person, not for a process.
UNFINISHED_STATES: tuple[RunState, ...] = tuple(
    s for s in RunState if s not in FINAL_STATES and s is not RunState.HELD)
# Where a held run may go: approved (queued again), expired at the round's close, skipped.
_FROM_HELD: frozenset[RunState] = frozenset({RunState.QUEUED, RunState.FAILED, RunState.SKIPPED})

# The happy path, in order; each state may move only to the next one.
PIPELINE: tuple[RunState, ...] = (
    RunState.QUEUED,
    RunState.DOWNLOADING,
    RunState.PREDICTING,
    RunState.VALIDATING,
    RunState.UPLOADING,
    RunState.SUBMITTED,
)


def can_transition(current: RunState, target: RunState) -> bool:
    """Whether ``current -> target`` is a legal state change.

    >>> can_transition(RunState.QUEUED, RunState.DOWNLOADING)
    True
    >>> can_transition(RunState.SUBMITTED, RunState.QUEUED)
    False
    """
    if current is RunState.FAILED:
        return target is RunState.QUEUED
    if current.is_final:
        return False
    if current is RunState.HELD:
        return target in _FROM_HELD
    if target is RunState.HELD:
        return current is RunState.VALIDATING
    if target in _ENDS or target is current:
        return True
    return PIPELINE.index(target) == PIPELINE.index(current) + 1


def transition_hint(current: RunState, target: RunState) -> str:
    """A sentence saying why ``current -> target`` is refused and what is allowed instead."""
    if current is RunState.FAILED:
        return "a failed run can only be queued again (an admin re-run)"
    if current.is_final:
        return f"a {current.value} run is final and cannot change"
    allowed = [s.value for s in RunState if can_transition(current, s) and s is not current]
    return f"from {current.value} a run may move to {', '.join(allowed)}"
