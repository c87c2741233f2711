"""What a run's upload asks Numerai besides the upload itself: where to upload (asked early)
and whether an earlier attempt already submitted.

    target = await early_target(client, run, model, 512, deadline)     # None: ask again later
    existing = await numerai_submission(client, run, 512, deadline)    # a submission id, or None
"""

from __future__ import annotations

import logging
import time

from numerai_autopilot.config import ModelConfig
from numerai_autopilot.ledger import Run
from numerai_autopilot.numerai import NumeraiClient, UploadTarget

log = logging.getLogger(__name__)

# The upload URL is asked for while the model predicts (one Numerai call fewer after it),
# within this budget; the upload asks again if that failed or its PUT is refused.
_EARLY_TARGET_BUDGET_S = 10.0


def submission_filename(model: ModelConfig, round_number: int) -> str:
    """The name a run's CSV is uploaded (or written by a dry run) as."""
    return f"{model.name}-round{round_number}.csv"


async def early_target(client: NumeraiClient, run: Run, model: ModelConfig, round_number: int,
                       deadline: float) -> UploadTarget | None:
    """Where to upload, asked for while the model predicts; None if that failed (the
    upload then asks again with the run's whole deadline). Best effort: never raises."""
    try:
        return await client.upload_auth(
            run.model_id, submission_filename(model, round_number), model.tournament_id,
            deadline=min(deadline, time.time() + _EARLY_TARGET_BUDGET_S))
    except Exception as exc:  # noqa: BLE001  (best effort)
        log.info("run %s: asking for the upload URL early failed (%s); the upload will "
                 "ask again", run.id, exc)
        return None


async def numerai_submission(client: NumeraiClient, run: Run, round_number: int,
                             deadline: float) -> str | None:
    """Numerai's submission made by an earlier attempt of `run`, if any."""
    trigger = run.numerai_trigger_id
    for submission in await client.submissions(run.model_id, deadline=deadline):
        if trigger is not None and submission.trigger_id == trigger:
            return submission.id
        if (trigger is None and submission.round_number == round_number
                and submission.inserted_at is not None
                and submission.inserted_at >= run.created_at):
            return submission.id
    return None
