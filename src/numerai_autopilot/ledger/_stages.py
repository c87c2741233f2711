"""Checking a state change: the owner still holds the run, the move is allowed, and what the
target state needs is given. The stage rows it writes: `_changes.py`."""

from __future__ import annotations

from numerai_autopilot.errors import LedgerError
from numerai_autopilot.ledger.states import RunState, can_transition, transition_hint
from numerai_autopilot.ledger.types import Run


def check_advance(
    run: Run,
    state: RunState,
    owner: str | None,
    error: str | None,
    submission_id: str | None,
) -> None:
    name = f"run {run.id} (model {run.model_name!r})"
    if owner is not None and run.owner != owner:
        raise LedgerError(
            f"{name} is held by {run.owner or 'nobody'}, not {owner}: the lease was lost "
            "(renew it more often than lease_s); stop working on this run"
        )
    if not can_transition(run.state, state):
        raise LedgerError(
            f"{name} cannot move from {run.state.value} to {state.value}: "
            f"{transition_hint(run.state, state)}"
        )
    if state is RunState.SUBMITTED and not (submission_id or run.submission_id):
        raise LedgerError(
            f"{name}: pass the submission id Numerai returned when marking it submitted"
        )
    if state is RunState.FAILED and not error:
        raise LedgerError(f"{name}: say why it failed (error=...) so a person can act")
