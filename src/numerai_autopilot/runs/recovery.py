"""At start, before any run is claimed: the submissions Numerai has that the ledger lacks.

A server may start with no record of the current round although Numerai already has a
submission for it: a Cloud Run instance whose ledger was lost with the previous one, or a
ledger restored from a replica taken before the round was submitted. For each model (with a
known id) whose tournament has a current round the ledger has no submitted run of, Numerai's
submissions are asked for; one for that round is recorded as a submitted run (unless an
unfinished run made it and finds it itself when it resumes: `_found_by_its_run`), so
`resubmit = false` protects the round (a later trigger of it is skipped, and a run of it
recorded meanwhile, e.g. by the webhook that started this instance, is skipped before its
upload) and the dashboard shows it. A model Numerai has none for is left to its webhook and
the round watcher, as always: a lost ledger neither resubmits nor skips a model.

    recovered = await recover_submissions(ledger, client, rounds, model_ids, wait_s=60)
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

from numerai_autopilot.config import ModelConfig
from numerai_autopilot.errors import AutopilotError, LedgerError
from numerai_autopilot.ledger import Change, Ledger, Run, RunState
from numerai_autopilot.numerai import NumeraiClient, RoundInfo, SubmissionInfo
from numerai_autopilot.runs.model_ids import ModelIds, new_run
from numerai_autopilot.runs.rounds import CurrentRounds

log = logging.getLogger(__name__)

# Numerai is asked for this many models' submissions at once.
_CONCURRENCY = 8
# A round has fewer runs than this in any ledger (runs of one round number, all tournaments).
_ROUND_RUNS_LIMIT = 100_000


async def recover_submissions(
    ledger: Ledger, client: NumeraiClient, rounds: CurrentRounds, model_ids: ModelIds, *,
    wait_s: float,
) -> list[Run]:
    """Record, as submitted, each current round Numerai has a submission for and the ledger
    has no submitted run of (see the module docstring); the runs recorded.

    Call it before the dispatcher claims anything. It never raises for Numerai: a tournament
    whose round cannot be read within `wait_s`, or a model whose submissions cannot, is
    logged with what it means and left as it is.

    :param wait_s: how long Numerai is asked at most, for everything.
    """
    deadline = time.time() + wait_s
    models: dict[int, list[tuple[ModelConfig, str]]] = {}
    for model in model_ids.models.values():
        model_id = model_ids.get(model.name)
        if model_id is not None:
            models.setdefault(model.tournament_id, []).append((model, model_id))
    limit = asyncio.Semaphore(_CONCURRENCY)
    recovered: list[Run] = []
    for tournament, wanted in models.items():
        try:
            info = await rounds.get(tournament, wait=max(deadline - time.time(), 0.0))
        except AutopilotError as exc:
            log.warning("recovery: could not read tournament %s's current round (%s); its "
                        "runs go on without checking Numerai's submissions first",
                        tournament, exc)
            continue
        runs = await asyncio.to_thread(
            ledger.runs, limit=_ROUND_RUNS_LIMIT, round_number=info.number)
        # Not only the models without a run: a run recorded before this check (the webhook
        # that started the instance) or restored unfinished must not submit the round again.
        known = {run.model_id for run in runs
                 if run.tournament == tournament and run.state is RunState.SUBMITTED}
        missing = [(model, model_id) for model, model_id in wanted if model_id not in known]
        found = await asyncio.gather(*(
            _submission(client, model, model_id, info, deadline, limit)
            for model, model_id in missing))
        for (model, model_id), submission in zip(missing, found, strict=True):
            if submission is None or _found_by_its_run(submission, [
                    run for run in runs if run.model_id == model_id]):
                continue
            try:
                run = await asyncio.to_thread(
                    _record_submitted, ledger, model, model_id, info, submission)
            except LedgerError as exc:
                log.error("recovery: model %s: Numerai already has submission %s for round "
                          "%s, but the ledger could not record it (%s)", model.name,
                          submission.id, info.number, exc)
                continue
            if run is not None:
                recovered.append(run)
    return recovered


async def _submission(client: NumeraiClient, model: ModelConfig, model_id: str,
                      info: RoundInfo, deadline: float, limit: asyncio.Semaphore
                      ) -> SubmissionInfo | None:
    """Numerai's latest submission of `model` for round `info`, if any (None too when
    Numerai cannot say: logged)."""
    async with limit:
        try:
            submissions = await client.submissions(model_id, deadline=deadline)
        except AutopilotError as exc:
            log.warning("recovery: could not ask Numerai for model %s's submissions (%s); if "
                        "it already submitted round %s, a run of that round submits again",
                        model.name, exc, info.number)
            return None
    mine = [s for s in submissions if s.round_number == info.number
            and s.tournament in (None, model.tournament_id)]
    if not mine:
        return None
    oldest = datetime.min.replace(tzinfo=UTC)
    return max(mine, key=lambda s: s.inserted_at or oldest)  # the one Numerai keeps


def _found_by_its_run(submission: SubmissionInfo, runs: list[Run]) -> bool:
    """True when an unfinished run of `runs` made `submission` and will find it on Numerai
    before it uploads again (`uploads.numerai_submission`): one resumed in `uploading`,
    or claimed before (its next attempt asks Numerai). Its own record is then the one the
    ledger gets; a second, recovered one would count the submission twice."""
    for run in runs:
        trigger = run.numerai_trigger_id
        made_it = (submission.trigger_id == trigger if trigger is not None else
                   submission.inserted_at is not None and submission.inserted_at >= run.created_at)
        if (not run.is_final and made_it
                and (run.state is RunState.UPLOADING or run.attempts >= 1)):
            return True
    return False


def _record_submitted(ledger: Ledger, model: ModelConfig, model_id: str, info: RoundInfo,
                      submission: SubmissionInfo) -> Run | None:
    """Record `submission` as a submitted run of `model` for round `info`; None when another
    process holds that run (logged).

    :raises LedgerError: the ledger refused; a run recorded on the way is left skipped,
        never queued to submit the round again.
    """
    # A record of what Numerai has, not a new submission: recorded as `resubmit` so that an
    # unfinished run of the round does not make it a skipped run (that run then finds this
    # one submitted before its upload, and is skipped), under a trigger id of its own (not
    # the watcher's "watcher-round-N", which an unfinished watcher run may hold).
    requested = new_run(model, model_id, source="watcher", round_number=info.number,
                        trigger_id=f"watcher-recovered-round-{info.number}",
                        close_time=info.close_time, resubmit=True)
    run, _ = ledger.record(requested)  # not created: a start that stopped before finishing it
    if run.state is RunState.SUBMITTED:
        return run
    if run.state is not RunState.QUEUED or run.owner is not None:
        log.warning("recovery: run %s (model %s, round %s) is held by %s; not marked submitted",
                    run.id, model.name, info.number, run.owner)
        return None
    made = (f" at {submission.inserted_at:%Y-%m-%d %H:%M} UTC"
            if submission.inserted_at is not None else "")
    found = (f"Numerai already has submission {submission.id} for round {info.number}{made}, "
             "which this ledger had no record of")
    message = f"{found}; recorded as submitted, not run"
    # The ledger moves a run one stage at a time: the stages are passed through at once, in
    # one transaction, unclaimed (this process's dispatcher starts once recovery is done).
    changes = [
        Change(run.id, RunState.DOWNLOADING),
        Change(run.id, RunState.PREDICTING),
        Change(run.id, RunState.UPLOADING, via=RunState.VALIDATING),
        Change(run.id, RunState.SUBMITTED, submission_id=submission.id,
               detail={"recovered_from_numerai": True}, log=("info", message)),
    ]
    after = ledger.advance_many(changes)[-1]
    if isinstance(after, LedgerError):
        again = ledger.get(run.id)
        if again is not None and again.state is RunState.SUBMITTED:  # another instance's start
            return again
        # Never left queued: it would submit the round again.
        ledger.advance(run.id, RunState.SKIPPED,
                       error=f"{found}; recording it as submitted failed ({after}); not run")
        raise after
    log.info("recovery: model %s: %s (run %s)", model.name, message, run.id)
    return after
