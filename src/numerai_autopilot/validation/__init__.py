"""Is a model's output a valid submission for its tournament? Messages say what and how many.

    validate_predictions(predictions, live, "alpha", tournament=8)   # raises ValidationError

`classic` checks Classic submissions (and writes the CSV); `tickers` checks the ticker
submissions of Signals and Crypto. numerai-tools is imported on first use, not here.
"""

from numerai_autopilot.validation.classic import (
    submission_csv,
    to_csv_bytes,
    validate_predictions,
    warm_up,
)
from numerai_autopilot.validation.tickers import validate_tickers

__all__ = ["submission_csv", "to_csv_bytes", "validate_predictions", "validate_tickers", "warm_up"]
