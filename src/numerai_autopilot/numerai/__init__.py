"""Async client for Numerai's API: Classic (8), Signals (11) and Crypto (12).

    from numerai_autopilot.numerai import NumeraiClient, Tournament
    client = NumeraiClient(http, api_url, public_id, secret_key)
    submission_id = await client.upload_predictions(model_id, csv_bytes, "preds.csv",
                                                    Tournament.CLASSIC, trigger_id)

Errors live in ``numerai_autopilot.numerai.errors``.
"""

from numerai_autopilot.numerai.client import NumeraiClient
from numerai_autopilot.numerai.download import Progress
from numerai_autopilot.numerai.errors import (
    AuthenticationError,
    DeadlineExceeded,
    GraphQLError,
    NotFoundError,
    NumeraiError,
    TransientError,
    UploadError,
)
from numerai_autopilot.numerai.retry import RetryPolicy
from numerai_autopilot.numerai.records import (
    DownloadResult,
    ModelInfo,
    RoundInfo,
    SubmissionInfo,
    Tournament,
    UploadTarget,
)

__all__ = [
    "AuthenticationError",
    "DeadlineExceeded",
    "DownloadResult",
    "GraphQLError",
    "ModelInfo",
    "NotFoundError",
    "NumeraiClient",
    "NumeraiError",
    "Progress",
    "RetryPolicy",
    "RoundInfo",
    "SubmissionInfo",
    "Tournament",
    "TransientError",
    "UploadError",
    "UploadTarget",
]
