"""What the sandbox learns from an uploaded submission file, and whether Numerai would take it.

The checks follow numerai-tools' ``submissions`` module (its order and its messages, e.g.
``invalid_submission_ids: Not enough stocks submitted...`` for Signals and Crypto) without
importing it: it is slow to import and the sandbox must start fast. As numerai-tools does,
Signals and Crypto rows outside the round's universe are dropped before the count of 100.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import pandas as pd

from .settings import CLASSIC, CRYPTO

# numerai-tools' SIGNALS_ALLOWED_ID_COLS, CRYPTO_ALLOWED_ID_COLS, *_ALLOWED_PRED_COLS, *_MIN_TICKERS
_TICKER_COLUMNS = ("ticker", "sedol", "bloomberg_ticker", "composite_figi", "numerai_ticker")
_CRYPTO_COLUMNS = ("symbol",)
_SIGNAL_COLUMNS = ("prediction", "signal")
_DATE_COLUMNS = ("friday_date", "date")
_MIN_TICKERS = 100


@dataclass(frozen=True)
class UploadCheck:
    """Summary of an uploaded file: its hash, rows, and the first problem found, if any."""

    sha256: str
    row_count: int | None
    problem: str | None


def check_upload(body: bytes, filename: str, tournament: int,
                 live_ids: frozenset[str] | None) -> UploadCheck:
    """``live_ids``: the round's live ids (Classic) or universe (Signals, Crypto), if known."""
    digest = hashlib.sha256(body).hexdigest()
    try:
        frame = _read(body, filename)
    except Exception as exc:  # noqa: BLE001 - any parser failure: not a readable file
        return UploadCheck(digest, None, f"could not read {filename} as "
                           f"{'parquet' if filename.endswith('.parquet') else 'CSV'}: "
                           f"{type(exc).__name__}")
    if tournament == CLASSIC:
        problem = _classic_problem(frame, live_ids)
    else:
        problem = _signals_problem(frame, tournament, live_ids)
    return UploadCheck(digest, len(frame), problem)


def _read(body: bytes, filename: str) -> pd.DataFrame:
    if filename.lower().endswith(".parquet"):
        frame = pd.read_parquet(io.BytesIO(body))
        if frame.index.name is not None:
            frame = frame.reset_index()
        return frame
    return pd.read_csv(io.BytesIO(body))


def _values_problem(values: pd.Series, name: str, *, open_interval: bool) -> str | None:
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.isna().any():
        return f"{int(numeric.isna().sum())} {name} values are missing or not numbers"
    low, high = float(numeric.min()), float(numeric.max())
    if open_interval and (low <= 0 or high >= 1):
        return f"{name} values must be strictly between 0 and 1 (found {low}..{high})"
    if low < 0 or high > 1:
        return f"{name} values must be within [0, 1] (found {low}..{high})"
    if numeric.nunique() < 2:
        return f"{name} values are constant"
    return None


def _classic_problem(frame: pd.DataFrame, live_ids: frozenset[str] | None) -> str | None:
    columns = [str(c) for c in frame.columns]
    value_column = next((c for c in ("prediction", "probability") if c in columns), None)
    if "id" not in columns or value_column is None or len(columns) != 2:
        return f"expected exactly two columns, id and prediction; found {columns}"
    # plain Python strings: iterating pandas' Arrow-backed strings runs a loop per value
    ids = frame["id"].astype(str).to_numpy(dtype=object)
    unique = set(ids)
    if len(unique) != len(ids):
        return f"{len(ids) - len(unique)} duplicate ids"
    if live_ids is not None:
        missing = len(live_ids - unique)
        extra = len(unique - live_ids)
        if missing or extra:
            return (f"ids do not match the live data ({len(live_ids)} ids): "
                    f"{missing} missing, {extra} unknown")
    return _values_problem(frame[value_column], value_column, open_interval=False)


def _signals_problem(frame: pd.DataFrame, tournament: int,
                     universe: frozenset[str] | None) -> str | None:
    """numerai-tools' validate_submission_signals / _crypto, step by step."""
    frame = frame.drop(columns=[c for c in ("data_type",) if c in frame.columns])
    if tournament != CRYPTO:  # one optional date column
        date = next((c for c in frame.columns if c in _DATE_COLUMNS), None)
        if date is not None:
            frame = frame.drop(columns=[date])
    keys = _CRYPTO_COLUMNS if tournament == CRYPTO else _TICKER_COLUMNS
    columns = [str(c) for c in frame.columns]
    if len(columns) != 2 or columns[0] not in keys or columns[1] not in _SIGNAL_COLUMNS:
        return (f"invalid_submission_headers: headers must be one of {list(keys)} and one of "
                f"{list(_SIGNAL_COLUMNS)} (found {columns})")
    key, value = columns
    if frame[key].isna().any():
        return f"invalid_submission_ids: Submission must not contain NaNs in the {key} column."
    tickers = frame[key].astype(str)
    live = frame[tickers.isin(universe)] if universe is not None else frame
    if live[key].astype(str).duplicated().any():
        return f"invalid_submission_ids: Duplicates detected in {key} for live period."
    if len(live) < _MIN_TICKERS:
        return ("invalid_submission_ids: Not enough stocks submitted. Are you using the latest "
                f"live ids or live universe? ({len(live)} of {len(frame)} rows in this round's "
                f"universe; at least {_MIN_TICKERS} needed)")
    return _tools_values_problem(live[value])


def _tools_values_problem(values: pd.Series) -> str | None:
    """numerai-tools' validate_values: no NaN, within [0, 1] (its test is inclusive), std > 0."""
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.isna().any():
        return "invalid_submission_values: submission must not contain NaNs"
    if not numeric.between(0, 1).all():
        return ("invalid_submission_values: values must be between 0 and 1 exclusive "
                f"(found {float(numeric.min())}..{float(numeric.max())})")
    if abs(float(numeric.std())) < 1e-8:
        return "invalid_submission_values: submission must have non-zero standard deviation"
    return None
