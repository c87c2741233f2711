"""Held runs: suspect runs of models with `on_suspect = "hold"`, waiting for a person.

A held run is validated, its predictions kept with its `held` state change, nothing
uploaded; no process claims it. A person approves it on the dashboard until the round's
close (`approve`): it is queued again with `detail["approved"]` ("primary": upload the kept
predictions, "fallback": submit the model's fallback), and the dispatcher runs it like any
other run, so the upload's checks (the ledger, Numerai's submissions) hold for it too; the
pipeline takes the kept predictions from `kept_outcome` instead of predicting again. Once
the close has passed, `expire_held` fails it.

    run = approve(ledger, run_id, "primary", "ada", time.time())
    expire_held(ledger, time.time())     # the round watcher calls it on each poll
"""

from __future__ import annotations

import asyncio
import logging
from typing import Literal

from numerai_autopilot.errors import AutopilotError, PredictorError
from numerai_autopilot.executor import PredictOutcome
from numerai_autopilot.ledger import Ledger, Run, RunState

log = logging.getLogger(__name__)

Choice = Literal["primary", "fallback"]
HOLD_HINT = ("not uploaded: approve it (Submit anyway) or its fallback on its dashboard page "
             "before the round closes")


class NotApprovable(AutopilotError):
    """The run cannot be approved (not held, or its round closed); the message says why."""


def hold_until(run: Run) -> float | None:
    """Until when (epoch seconds) a held run may be approved: its deadline when it was held
    (the round's close, later with late submissions), else the round's close, else None."""
    until = run.detail.get("hold_until")
    if isinstance(until, int | float):
        return float(until)
    return run.close_time.timestamp() if run.close_time is not None else None


def approve(ledger: Ledger, run_id: str, choice: Choice, user: str, now: float) -> Run:
    """Queue the held run `run_id` again to submit `choice`, approved by `user`; committed.

    :raises NotApprovable: the run is not held, or its round has closed.
    :raises LedgerError: the ledger refused (e.g. another person approved it meanwhile).
    """
    run = ledger.get(run_id)
    if run is None or run.state is not RunState.HELD:
        state = "not in the ledger" if run is None else run.state.value
        raise NotApprovable(f"run {run_id} is {state}: only a held run can be approved")
    until = hold_until(run)
    if until is not None and now >= until:
        raise NotApprovable(f"run {run_id}: round {run.round_number} has closed; a held run "
                            "can no longer be submitted")
    what = "its kept predictions" if choice == "primary" else "its fallback"
    return ledger.advance(run_id, RunState.QUEUED,
                          detail={"approved": choice, "approved_by": user},
                          log=("info", f"approved by {user}: submitting {what}"))


def approved_note(run: Run) -> str:
    """What an approved run does instead of predicting, for its log; "" for any other run."""
    if run.detail.get("approved") == "primary":
        return "uploading the predictions kept when it was held; not predicting again"
    if run.detail.get("approved") == "fallback":
        return "held as suspect: submitting its fallback, as approved"
    return ""


async def kept_outcome(ledger: Ledger, run: Run) -> PredictOutcome:
    """What an approved held run submits: its kept predictions (as a validated outcome with
    no worker and no timings), or a PredictorError when its fallback was chosen (the
    pipeline then uses the fallback, as for a failed predictor)."""
    by = run.detail.get("approved_by", "a person")
    if run.detail.get("approved") == "fallback":
        raise PredictorError(f"model '{run.model_name}': held as suspect; {by} chose its fallback")
    data = await asyncio.to_thread(ledger.predictions, run.id)
    if data is None:
        raise PredictorError(f"model '{run.model_name}': the predictions kept when run {run.id} "
                             "was held are gone (forgotten); run the model again")
    return PredictOutcome(None, 0.0, "", csv=data, rows=data.count(b"\n") - 1)


def expire_held(ledger: Ledger, now: float) -> list[Run]:
    """Fail every held run whose round has closed (`hold_until`); returns them. A run another
    process moved meanwhile (approved, expired) is left to it."""
    expired = []
    for run in ledger.runs(limit=1000, states=[RunState.HELD]):
        until = hold_until(run)
        if until is None or now < until:
            continue
        suspect = "; ".join(run.detail.get("health", {}).get("suspect", []))
        message = (f"held as suspect ({suspect}) and not approved before round "
                   f"{run.round_number} closed; nothing was submitted")
        try:
            expired.append(ledger.advance(run.id, RunState.FAILED, error=message,
                                          log=("error", message)))
        except AutopilotError as exc:
            log.info("held run %s was not expired: %s", run.id, exc)
    return expired
