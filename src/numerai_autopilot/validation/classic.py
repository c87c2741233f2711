"""Is a model's output a valid submission? Specific messages first, numerai-tools last.

    frame = validate_predictions(out.predictions, live_ids, "alpha")   # columns id, prediction
    frame = validate_predictions(out.predictions, universe, "sig", tournament=11)
    body = to_csv_bytes(frame)

Our own checks run first because they say what is wrong, how many rows and how to fix it;
numerai-tools' ``submissions`` checks then run on the normalized frame as Numerai's own word.
numerai-tools is imported inside the function: it pulls in scipy, which must stay off the
server's start-up path.

Tournaments: Classic (8) here; Signals (11) and Crypto (12), keyed by tickers, in
``tickers.py``. ``_VALIDATORS`` maps each tournament to its checks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from numerai_autopilot.errors import ValidationError
from numerai_autopilot.validation.tickers import CRYPTO, KEY_COLUMNS, SIGNALS, validate_tickers

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["KEY_COLUMNS", "submission_csv", "to_csv_bytes", "validate_predictions"]

# Far more rows than live ids is a predictor that returned the wrong data (training rows?).
_HUGE_FACTOR = 4
_EXAMPLES = 3

Validator = Callable[["pd.DataFrame", "pd.Index | pd.DataFrame", str], "pd.DataFrame"]


def validate_predictions(predictions: pd.DataFrame, live: pd.Index | pd.DataFrame,
                         model_name: str, tournament: int = 8) -> pd.DataFrame:
    """Check predictions against the round's live data; return the submission frame.

    Classic: ``live`` is the live ids (an Index, or a frame with an ``id`` column);
    ``predictions`` has index ``id`` (or an ``id`` column) and a numeric ``prediction``
    column. Returns columns ``id`` and ``prediction`` in live-id order.
    Signals and Crypto: ``live`` is the universe's ticker columns (a frame; an Index is
    taken as its key column); ``predictions`` a ticker column and ``signal``, or a Series of
    signals indexed by ticker. Returns columns ``[ticker column, "signal"]``.
    Raises ValidationError saying what is wrong, for how many rows, and how to fix it.
    """
    validator = _VALIDATORS.get(int(tournament))
    if validator is None:
        raise ValidationError(
            f"model {model_name!r}: validating submissions for tournament {tournament} is "
            f"not supported yet (supported: {', '.join(str(t) for t in sorted(_VALIDATORS))})"
        )
    return validator(predictions, live, model_name)


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """The submission file's bytes (``id,prediction`` or ``numerai_ticker,signal`` rows).

    Written by Arrow's CSV writer (quicker than pandas' `to_csv`), with no quotes, as
    pandas writes it; keys that would need quoting go through pandas.
    """
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    keys = frame[frame.columns[0]].astype(str)
    if keys.str.contains(r'[,"\r\n]', regex=True).any():
        text: str = frame.to_csv(index=False, lineterminator="\n")
        return text.encode("utf-8")
    sink = pa.BufferOutputStream()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pa_csv.write_csv(table, sink, pa_csv.WriteOptions(include_header=False, quoting_style="none"))
    header = ",".join(str(c) for c in frame.columns) + "\n"  # Arrow would quote it
    body: bytes = sink.getvalue().to_pybytes()
    return header.encode("utf-8") + body


def warm_up() -> None:
    """Import what validating and writing a submission needs (numerai-tools brings scipy)."""
    import numerai_tools.submissions  # noqa: F401
    import pyarrow.csv  # noqa: F401


def submission_csv(predictions: pd.DataFrame, live_path: Path, model_name: str,
                   tournament: int = 8) -> tuple[bytes, int]:
    """Validate against the round file at `live_path` and serialise: (CSV bytes, rows).

    `live_path`: the round's live file (Arrow IPC) with the tournament's key columns.
    Raises ValidationError as `validate_predictions` does. Runs on a Dask worker right after
    the predictor (so a round's validation is spread over the workers, off the server's
    event loop), and on the server for a benchmark fallback.
    """
    keys = KEY_COLUMNS.get(tournament, ("id",))
    live = _live_keys(live_path, tuple(keys))
    frame = validate_predictions(predictions, live, model_name, tournament=tournament)
    return to_csv_bytes(frame), len(frame)


_live_cache: dict[tuple[str, tuple[str, ...]], object] = {}
_live_lock = threading.Lock()


def _live_keys(path: Path, keys: tuple[str, ...]) -> Any:
    """The live ids (an Index, Classic) or the universe's ticker columns (a frame), read once
    per round file and process, and shared by every run of the round: one read instead of
    one per model, and validation reuses what it learnt about the same Index object."""
    import pyarrow as pa

    st = path.stat()
    key = (f"{path}:{st.st_mtime_ns}:{st.st_size}", keys)
    with _live_lock:
        cached = _live_cache.get(key)
        if cached is not None:
            return cached
        with pa.memory_map(str(path)) as source:
            table = pa.ipc.open_file(source).read_all()
        present = [c for c in keys if c in table.column_names] or table.column_names[:1]
        live = table.select(present).replace_schema_metadata(None).to_pandas()
        value: Any = live
        if present == ["id"]:
            import pandas as pd

            value = pd.Index(live["id"], name="id")
        while len(_live_cache) >= 4:  # a few rounds and tournaments
            del _live_cache[next(iter(_live_cache))]
        _live_cache[key] = value
        return value


def _examples(values: pd.Index) -> str:
    shown = ", ".join(repr(str(v)) for v in values[:_EXAMPLES])
    return f" (e.g. {shown})" if shown else ""


def _live_ids(live: pd.Index | pd.DataFrame) -> pd.Index:
    import pandas as pd

    if isinstance(live, pd.DataFrame):
        key = "id" if "id" in live.columns else live.columns[0]
        return pd.Index(live[key], name="id")
    return live


def _universe(live: pd.Index | pd.DataFrame, default_key: str) -> pd.DataFrame:
    import pandas as pd

    if isinstance(live, pd.DataFrame):
        return live
    return pd.DataFrame({live.name if live.name is not None else default_key: live.to_numpy()})


def _signals(predictions: pd.DataFrame, live: pd.Index | pd.DataFrame, name: str
             ) -> pd.DataFrame:
    return validate_tickers(predictions, _universe(live, SIGNALS.keys[0]), name, SIGNALS)


def _crypto(predictions: pd.DataFrame, live: pd.Index | pd.DataFrame, name: str
            ) -> pd.DataFrame:
    return validate_tickers(predictions, _universe(live, CRYPTO.keys[0]), name, CRYPTO)


def _classic(predictions: pd.DataFrame, live: pd.Index | pd.DataFrame, name: str
             ) -> pd.DataFrame:
    import pandas as pd

    live_ids = _live_ids(live)
    label = f"model {name!r}"
    n_live = len(live_ids)
    if not isinstance(predictions, pd.DataFrame):
        raise ValidationError(f"{label}: predictions are a {type(predictions).__name__}, not a "
                              f"DataFrame with a 'prediction' column indexed by id")
    frame = predictions
    if "id" in frame.columns:
        frame = frame.set_index("id")
    if "prediction" not in frame.columns:
        raise ValidationError(f"{label}: predictions have columns {[str(c) for c in frame.columns]}"
                              f"; a 'prediction' column is required")
    extra = [str(c) for c in frame.columns if c != "prediction"]
    if extra:
        raise ValidationError(f"{label}: predictions have extra columns {extra}; a submission "
                              f"has only 'id' and 'prediction'")
    if len(frame) > _HUGE_FACTOR * max(n_live, 1):
        raise ValidationError(
            f"{label}: predictor returned {len(frame):,} rows for {n_live:,} live ids; predict "
            f"on this round's live features only, one row per live id"
        )
    index = frame.index
    if not (pd.api.types.is_string_dtype(index.dtype) or index.dtype == object):
        raise ValidationError(
            f"{label}: predictions are indexed by {type(index).__name__} of {index.dtype} values, "
            f"not live ids; return predictions on live_features.index (the 'id' strings)"
        )
    preds = frame["prediction"]
    if preds.dtype == bool or not pd.api.types.is_numeric_dtype(preds.dtype):
        raise ValidationError(f"{label}: predictions have dtype {preds.dtype}; they must be "
                              f"numbers in [0, 1]")
    missing_id = int(index.isna().sum())
    if missing_id:
        raise ValidationError(f"{label}: {missing_id:,} rows have no id (NaN); keep "
                              f"live_features.index on the predictions")
    duplicated = index[index.duplicated()]
    if len(duplicated):
        raise ValidationError(
            f"{label}: {len(duplicated):,} duplicate ids{_examples(duplicated.unique())}; return "
            f"one prediction per live id"
        )
    # a hash lookup: isin on Arrow-backed strings converts every value to Python first
    unknown = index[live_ids.get_indexer_for(index) < 0]
    if len(unknown):
        raise ValidationError(
            f"{label}: {len(unknown):,} ids not in the live data{_examples(unknown)}; predict on "
            f"this round's live features (is the data version right?)"
        )
    if len(frame) < n_live:
        raise ValidationError(
            f"{label}: predictor returned {n_live - len(frame):,} fewer rows than the live data "
            f"({n_live:,}); return one prediction per live id"
        )
    values = preds.astype("float64")
    nan = int(values.isna().sum())
    if nan:
        raise ValidationError(f"{label}: {nan:,} predictions are NaN; fill them (e.g. with 0.5) "
                              f"or fix the features they come from")
    outside = values[(values < 0) | (values > 1)]
    if len(outside):
        raise ValidationError(
            f"{label}: {len(outside):,} values outside [0, 1] (min {values.min():.4g}, max "
            f"{values.max():.4g}); rank or clip them, e.g. preds.rank(pct=True)"
        )
    if n_live > 1 and values.nunique() == 1:
        raise ValidationError(
            f"{label}: all {n_live:,} predictions are the same value {values.iloc[0]:.4g}; a "
            f"constant submission cannot be scored, check the model's output"
        )
    result = pd.DataFrame({"id": live_ids.astype(str),
                           "prediction": values.reindex(live_ids).to_numpy()})
    _numerai_tools_check(result, live_ids, label)
    return result


def _numerai_tools_check(submission: pd.DataFrame, live_ids: pd.Index, label: str) -> None:
    """numerai-tools' ``validate_submission_numerai``, its id check once per live-id set.

    ``submission``'s ids are ``live_ids`` in order (checked above), so numerai-tools' id
    check depends on the live ids only: it runs once per round's ids (it holds the GIL
    throughout) instead of once per model. Headers and values are checked for every
    submission.
    """
    import pandas as pd
    from numerai_tools.submissions import (
        validate_headers_numerai,
        validate_ids_numerai,
        validate_values,
    )

    global _ids_checked
    try:
        id_col, value_col = validate_headers_numerai(submission)
        if _ids_checked is not live_ids:
            # numerai-tools converts the ids with astype(str): Arrow-backed strings, whose
            # isin() and iteration loop in Python; Python-backed strings are hashed instead,
            # same values, same verdict. The option is process-wide: the lock keeps two
            # checks from restoring it out of order.
            with _storage_lock, pd.option_context("mode.string_storage", "python"):
                validate_ids_numerai(pd.Series(live_ids.astype(str)), submission.copy(),
                                     id_col)
            _ids_checked = live_ids
        validate_values(submission, value_col)
    except AssertionError as exc:  # numerai-tools reports failures as assertions
        raise ValidationError(f"{label}: numerai-tools rejected the submission: {exc}") from exc


_storage_lock = threading.Lock()
# The live ids whose numerai-tools id check passed last (the pipeline reuses one Index per
# round file); a race only repeats the check.
_ids_checked: object = None


_VALIDATORS: dict[int, Validator] = {8: _classic, 11: _signals, 12: _crypto}
