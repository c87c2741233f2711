"""A predictor's output as predictions: checked, and shaped as one float column on the ids."""

from __future__ import annotations

from typing import TYPE_CHECKING

from numerai_autopilot.executor.errors import PredictorOutputError

if TYPE_CHECKING:
    import pandas as pd

# numerai-tools' Signals and Crypto id columns: a predictor may key its signals by any of them
_TICKER_KEYS = ("numerai_ticker", "bloomberg_ticker", "composite_figi", "sedol", "ticker", "symbol")


def as_predictions(name: str, output: object) -> pd.DataFrame:
    """A Series or a DataFrame with ``prediction`` -> DataFrame(index id, float prediction)."""
    import pandas as pd

    if isinstance(output, pd.DataFrame):
        frame = _signals_as_predictions(output)
        if "id" in frame.columns and "prediction" in frame.columns:
            frame = frame.set_index("id")
        if "prediction" not in frame.columns:
            cols = [str(c) for c in frame.columns[:10]]
            more = f" and {len(frame.columns) - 10} more" if len(frame.columns) > 10 else ""
            raise PredictorOutputError(
                f"model {name!r}: predictor returned a DataFrame with columns {cols}{more}; "
                f"a 'prediction' column ('signal' for Signals and Crypto) is required (e.g. return "
                f"pd.DataFrame({{'prediction': preds}}, index=live_features.index))"
            )
        series = frame["prediction"]
        if isinstance(series, pd.DataFrame):
            raise PredictorOutputError(
                f"model {name!r}: predictor returned a DataFrame with "
                f"{series.shape[1]} columns named 'prediction'; return exactly one"
            )
    elif isinstance(output, pd.Series):
        series = output
    else:
        raise PredictorOutputError(
            f"model {name!r}: predictor returned {type(output).__name__}; return a DataFrame "
            f"with a 'prediction' column on live_features.index, or a Series on that index"
        )
    if series.dtype == bool or not pd.api.types.is_numeric_dtype(series.dtype):
        raise PredictorOutputError(
            f"model {name!r}: predictions have dtype {series.dtype}; they must be numbers "
            f"in [0, 1]"
        )
    result = pd.DataFrame({"prediction": series.to_numpy(dtype="float64", na_value=float("nan"))},
                          index=series.index.copy())
    result.index.name = series.index.name if series.index.name in _TICKER_KEYS else "id"
    return result


def _signals_as_predictions(frame: pd.DataFrame) -> pd.DataFrame:
    """Signals/Crypto output (a ticker column and ``signal``) as index + ``prediction``."""
    if "signal" in frame.columns and "prediction" not in frame.columns:
        frame = frame.rename(columns={"signal": "prediction"})
    keys = [k for k in _TICKER_KEYS if k in frame.columns]
    if len(keys) == 1 and "prediction" in frame.columns:
        frame = frame.set_index(keys[0])
    return frame
