"""Async client for Numerai's API: Classic (8), Signals (11) and Crypto (12).

    from numerai_autopilot.numerai import NumeraiClient, Tournament
    client = NumeraiClient.from_settings(http, config.numerai)   # or (http, api_url, keys)
    submission_id = await client.upload_predictions(model_id, csv_bytes, "preds.csv",
                                                    Tournament.CLASSIC, trigger_id)

Every failure is a NumeraiError; ``errors.py`` draws the tree.
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
from numerai_autopilot.numerai.results import (
    DownloadResult,
    ModelInfo,
    RoundInfo,
    SubmissionInfo,
    Tournament,
    UploadTarget,
)
from numerai_autopilot.numerai.retry import Clock, RetryPolicy

__all__ = [
    "AuthenticationError",
    "Clock",
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
