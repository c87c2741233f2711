"""What the sandbox learns from an uploaded submission file, and whether Numerai would take it.

The checks follow numerai-tools' ``submissions`` module in spirit (columns, every live id,
no duplicates, no NaN, values within range) without importing it: it is slow to import and
the sandbox must start fast.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import pandas as pd

from .settings import CLASSIC, CRYPTO

_TICKER_COLUMNS = ("numerai_ticker", "bloomberg_ticker", "composite_figi", "sedol", "ticker")


@dataclass(frozen=True)
class UploadCheck:
    """Summary of an uploaded file: its hash, rows, and the first problem found, if any."""

    sha256: str
    row_count: int | None
    problem: str | None


def check_upload(body: bytes, filename: str, tournament: int,
                 live_ids: frozenset[str] | None) -> UploadCheck:
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
        problem = _signals_problem(frame, tournament)
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
    ids = frame["id"].astype(str)
    if ids.duplicated().any():
        return f"{int(ids.duplicated().sum())} duplicate ids"
    if live_ids is not None:
        missing = len(live_ids - set(ids))
        extra = len(set(ids) - live_ids)
        if missing or extra:
            return (f"ids do not match the live data ({len(live_ids)} ids): "
                    f"{missing} missing, {extra} unknown")
    return _values_problem(frame[value_column], value_column, open_interval=False)


def _signals_problem(frame: pd.DataFrame, tournament: int) -> str | None:
    columns = [str(c) for c in frame.columns]
    keys = ("symbol",) if tournament == CRYPTO else _TICKER_COLUMNS
    key = next((c for c in keys if c in columns), None)
    value_column = next((c for c in ("signal", "prediction") if c in columns), None)
    if key is None or value_column is None:
        return f"expected a {' / '.join(keys)} column and a signal column; found {columns}"
    if frame[key].astype(str).duplicated().any():
        return f"duplicate values in {key}"
    if frame[key].nunique() < 100:
        return f"at least 100 {key} values are required; found {frame[key].nunique()}"
    return _values_problem(frame[value_column], value_column, open_interval=True)
