"""Signals (11) and Crypto (12) submissions: a ticker column and a signal per ticker.

    frame = validate_tickers(predictions, universe, "sig", SIGNALS)  # numerai_ticker, signal
    body = to_csv_bytes(frame)

The rules are numerai-tools' (``validate_submission_signals`` / ``..._crypto``): a ticker
column it knows, a ``signal`` (or ``prediction``) column, no duplicates, at least 100 tickers
of the round's universe, values strictly between 0 and 1, not constant. Two are stricter here,
because a silent loss is worse than a clear refusal: a ticker outside the universe fails the
run (numerai-tools would drop it), and so does a value of exactly 0 or 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from numerai_autopilot.errors import ValidationError

if TYPE_CHECKING:
    import pandas as pd

# numerai-tools' SIGNALS_ALLOWED_ID_COLS, numerai_ticker first: the universe's own key.
SIGNALS_TICKER_COLUMNS = ("numerai_ticker", "bloomberg_ticker", "composite_figi", "sedol", "ticker")
# numerai-tools' SIGNALS_MIN_TICKERS and CRYPTO_MIN_TICKERS
MIN_TICKERS = 100
_VALUE_COLUMNS = ("signal", "prediction")
_IGNORED_COLUMNS = ("date", "friday_date", "data_type")
_EXAMPLES = 3


@dataclass(frozen=True)
class TickerRules:
    """What a tournament's submission is keyed by, and what its messages call things."""

    tournament: int
    title: str  # "Signals"
    keys: tuple[str, ...]  # accepted ticker columns, the universe's key first
    noun: str  # "tickers"
    universe_file: str


SIGNALS = TickerRules(11, "Signals", SIGNALS_TICKER_COLUMNS, "tickers", "signals/v2.1/live.parquet")
CRYPTO = TickerRules(12, "Crypto", ("symbol",), "symbols", "crypto/v2.0/live_universe.parquet")

# The key columns of each tournament's live file (Classic: the live ids).
KEY_COLUMNS: dict[int, tuple[str, ...]] = {8: ("id",), 11: SIGNALS.keys, 12: CRYPTO.keys}


def _examples(values: pd.Index | pd.Series) -> str:
    shown = ", ".join(repr(str(v)) for v in list(values)[:_EXAMPLES])
    return f" (e.g. {shown})" if shown else ""


def _as_frame(predictions: object, rules: TickerRules, default_key: str, label: str
              ) -> pd.DataFrame:
    """A Series indexed by ticker, or a frame with a ticker column or index: as columns."""
    import pandas as pd

    if isinstance(predictions, pd.Series):
        predictions = predictions.to_frame("signal")
    if not isinstance(predictions, pd.DataFrame):
        raise ValidationError(
            f"{label}: predictions are a {type(predictions).__name__}; return a DataFrame with a "
            f"{default_key} column and a 'signal' column, or a Series of signals indexed by "
            f"{default_key}"
        )
    frame = predictions.drop(columns=[c for c in _IGNORED_COLUMNS if c in predictions.columns])
    if not any(c in frame.columns for c in rules.keys):
        index = frame.index
        if index.name in rules.keys:
            frame = frame.reset_index()
        elif index.name in (None, "id") and not pd.api.types.is_numeric_dtype(index.dtype):
            frame = frame.rename_axis(default_key).reset_index()  # tickers on a nameless index
        else:
            raise ValidationError(
                f"{label}: predictions have no ticker column (columns "
                f"{[str(c) for c in frame.columns]}, index {index.name!r}); a {rules.title} "
                f"submission needs one of {list(rules.keys)}, e.g. "
                f"pd.DataFrame({{'{default_key}': universe.index, 'signal': signals}})"
            )
    return frame


def validate_tickers(predictions: object, universe: pd.DataFrame, model_name: str,
                     rules: TickerRules) -> pd.DataFrame:
    """Check a Signals or Crypto submission against the round's universe; return it.

    ``universe``: the live file's ticker columns (at least the tournament's key column).
    Returns columns ``[ticker column, "signal"]`` sorted by ticker.
    Raises ValidationError saying what is wrong, for how many tickers, and how to fix it.
    """
    import pandas as pd

    label = f"model {model_name!r}"
    known = [c for c in rules.keys if c in universe.columns]
    if not known:
        raise ValidationError(
            f"{label}: this round's live universe has none of the {rules.title} ticker columns "
            f"{list(rules.keys)} (it has {[str(c) for c in universe.columns]}); is the model's "
            f"tournament or data version right?"
        )
    frame = _as_frame(predictions, rules, known[0], label)
    columns = [str(c) for c in frame.columns]
    keys = [c for c in rules.keys if c in columns]
    if len(keys) > 1:
        raise ValidationError(f"{label}: predictions have several ticker columns {keys}; keep one")
    key = keys[0]
    values_in = [c for c in _VALUE_COLUMNS if c in columns]
    if not values_in:
        raise ValidationError(f"{label}: predictions have columns {columns}; a 'signal' column is "
                              f"required")
    if len(values_in) > 1:
        raise ValidationError(f"{label}: predictions have both 'signal' and 'prediction'; keep one")
    value = values_in[0]
    extra = [c for c in columns if c not in (key, value)]
    if extra:
        raise ValidationError(f"{label}: predictions have extra columns {extra}; a {rules.title} "
                              f"submission has only {key!r} and 'signal'")
    if key not in universe.columns:
        raise ValidationError(
            f"{label}: predictions are keyed by {key!r} but this round's universe has "
            f"{known}; return {known[0]!r} values"
        )
    n_universe = int(universe[key].nunique())
    if len(frame) > 4 * max(n_universe, MIN_TICKERS):
        raise ValidationError(
            f"{label}: predictor returned {len(frame):,} rows for a universe of {n_universe:,} "
            f"{rules.noun}; return one signal per {key} of this round's universe (one date only)"
        )
    signals = frame[value]
    if signals.dtype == bool or not pd.api.types.is_numeric_dtype(signals.dtype):
        raise ValidationError(f"{label}: signals have dtype {signals.dtype}; they must be numbers "
                              f"between 0 and 1")
    missing = int(frame[key].isna().sum())
    if missing:
        raise ValidationError(f"{label}: {missing:,} rows have no {key} (NaN); give every signal "
                              f"its ticker")
    tickers = frame[key].astype(str)
    duplicated = tickers[tickers.duplicated()]
    if len(duplicated):
        raise ValidationError(
            f"{label}: {len(duplicated):,} duplicate {rules.noun}{_examples(duplicated.unique())}; "
            f"return one signal per {key} (drop older dates)"
        )
    unknown = tickers[~tickers.isin(universe[key].astype(str))]
    if len(unknown):
        raise ValidationError(
            f"{label}: {len(unknown):,} {rules.noun} are not in this round's universe"
            f"{_examples(unknown)}; predict only on the {key} values of this round's live "
            f"universe ({rules.universe_file})"
        )
    if len(tickers) < MIN_TICKERS:
        raise ValidationError(
            f"{label}: {len(tickers):,} {rules.noun} submitted; Numerai needs at least "
            f"{MIN_TICKERS} of this round's universe ({n_universe:,} {rules.noun}); return a "
            f"signal for more of the universe"
        )
    values = signals.astype("float64")
    nan = int(values.isna().sum())
    if nan:
        raise ValidationError(f"{label}: {nan:,} signals are NaN; fill them (e.g. with 0.5) or "
                              f"leave those {rules.noun} out")
    outside = values[(values <= 0) | (values >= 1)]
    if len(outside):
        raise ValidationError(
            f"{label}: {len(outside):,} signals not strictly between 0 and 1 (min "
            f"{values.min():.4g}, max {values.max():.4g}); rank them into the open interval, "
            f"e.g. (s.rank() - 0.5) / len(s)"
        )
    if values.nunique() == 1:
        raise ValidationError(
            f"{label}: all {len(values):,} signals are the same value {values.iloc[0]:.4g}; a "
            f"constant submission cannot be scored, check the model's output"
        )
    result = (pd.DataFrame({key: tickers.to_numpy(), "signal": values.to_numpy()})
              .sort_values(key, ignore_index=True))
    _numerai_tools_check(result, universe, rules, label)
    return result


def _numerai_tools_check(submission: pd.DataFrame, universe: pd.DataFrame, rules: TickerRules,
                         label: str) -> None:
    from numerai_tools import submissions as tools

    live = universe.astype(str)
    try:
        if rules.tournament == SIGNALS.tournament:
            # validate_submission_signals, less its in-place drop of a deprecated column
            # (pandas warns about inplace=True; our frame never has that column)
            key, value, _ = tools.validate_headers_signals(submission)
            filtered, _ = tools.validate_ids_signals(live[key], submission, key)
            tools.validate_values(filtered, value)
        else:
            tools.validate_submission_crypto(live, submission.copy())
    except (AssertionError, KeyError) as exc:  # numerai-tools reports failures as assertions
        raise ValidationError(f"{label}: numerai-tools rejected the submission: {exc}") from exc
