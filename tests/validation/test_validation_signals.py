"""Signals and Crypto validation: every message names the model, the count and the fix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from numerai_autopilot.errors import ValidationError
from numerai_autopilot.validation import to_csv_bytes, validate_predictions

TICKERS = [f"T{i:03d} US" for i in range(300)]
SYMBOLS = [f"S{i:03d}" for i in range(150)]
SIGNALS_UNIVERSE = pd.DataFrame({"numerai_ticker": TICKERS,
                                 "bloomberg_ticker": [f"B{i:03d} UN" for i in range(300)]})
CRYPTO_UNIVERSE = pd.DataFrame({"symbol": SYMBOLS})


def signals(tickers: list[str | None] | list[str] = TICKERS, values: object = None,
            key: str = "numerai_ticker") -> pd.DataFrame:
    if values is None:
        values = np.linspace(0.01, 0.99, len(tickers))
    return pd.DataFrame({key: tickers, "signal": values})


def sig_fails(predictions: object, message: str,
              universe: pd.DataFrame | pd.Index = SIGNALS_UNIVERSE) -> None:
    with pytest.raises(ValidationError, match=message):
        validate_predictions(predictions, universe, "sig", tournament=11)  # type: ignore[arg-type,unused-ignore]


def test_a_valid_signals_submission_is_sorted_by_ticker_and_serialised() -> None:
    shuffled = signals().sample(frac=1.0, random_state=3)
    frame = validate_predictions(shuffled, SIGNALS_UNIVERSE, "sig", tournament=11)
    assert list(frame.columns) == ["numerai_ticker", "signal"]
    assert frame["numerai_ticker"].tolist() == sorted(TICKERS)
    assert to_csv_bytes(frame).startswith(b"numerai_ticker,signal\nT000 US,0.01\n")


def test_other_ticker_columns_a_series_and_an_index_are_accepted() -> None:
    other = signals([f"B{i:03d} UN" for i in range(300)], key="bloomberg_ticker")
    assert validate_predictions(other, SIGNALS_UNIVERSE, "sig", 11).columns[0] == "bloomberg_ticker"
    series = pd.Series(np.linspace(0.1, 0.9, 300), index=pd.Index(TICKERS, name="numerai_ticker"))
    assert len(validate_predictions(series, SIGNALS_UNIVERSE, "sig", 11)) == 300
    # the worker's shape: index "id" holding tickers, column "prediction"; dates are dropped
    worker = pd.DataFrame({"prediction": np.linspace(0.1, 0.9, 300), "date": "2026-07-03"},
                          index=pd.Index(TICKERS, name="id"))
    assert validate_predictions(worker, SIGNALS_UNIVERSE, "sig", 11).columns[0] == "numerai_ticker"
    universe = pd.Index(TICKERS, name="numerai_ticker")
    assert len(validate_predictions(signals(), universe, "sig", 11)) == 300


def test_too_few_tickers() -> None:
    sig_fails(signals(TICKERS[:40]),
              r"^model 'sig': 40 tickers submitted; Numerai needs at least 100 of this round's "
              r"universe \(300 tickers\); return a signal for more of the universe$")


def test_tickers_outside_the_universe() -> None:
    sig_fails(signals([*TICKERS[:260], *(f"X{i} US" for i in range(40))]),
              r"^model 'sig': 40 tickers are not in this round's universe \(e\.g\. 'X0 US', "
              r"'X1 US', 'X2 US'\); predict only on the numerai_ticker values of this round's "
              r"live universe \(signals/v2\.1/live\.parquet\)$")


def test_duplicates_and_missing_tickers() -> None:
    sig_fails(signals([*TICKERS[:290], *TICKERS[:10]]),
              r"^model 'sig': 10 duplicate tickers \(e\.g\. 'T000 US', 'T001 US', 'T002 US'\); "
              r"return one signal per numerai_ticker")
    sig_fails(signals([None, *TICKERS[1:]]), r"^model 'sig': 1 rows have no numerai_ticker")


def test_columns() -> None:
    sig_fails(pd.DataFrame({"numerai_ticker": TICKERS, "score": 0.5}),
              r"columns \['numerai_ticker', 'score'\]; a 'signal' column is required")
    sig_fails(signals().assign(prediction=0.5), "both 'signal' and 'prediction'; keep one")
    sig_fails(signals().assign(ticker=TICKERS), r"several ticker columns \['numerai_ticker', "
              r"'ticker'\]; keep one")
    sig_fails(signals().assign(volume=1.0), r"extra columns \['volume'\]; a Signals submission")
    sig_fails(pd.DataFrame({"signal": np.linspace(0.1, 0.9, 300)}),
              r"no ticker column .*needs one of \['numerai_ticker', 'bloomberg_ticker'")
    sig_fails(signals(key="sedol"), r"keyed by 'sedol' but this round's universe has "
              r"\['numerai_ticker', 'bloomberg_ticker'\]")
    sig_fails([0.5] * 300, "predictions are a list; return a DataFrame with a numerai_ticker")


def test_values() -> None:
    sig_fails(signals(values=["high"] * 300), r"signals have dtype \w+; they must be numbers")
    sig_fails(signals(values=[np.nan] * 5 + [0.5] * 295), r"^model 'sig': 5 signals are NaN")
    sig_fails(signals(values=np.linspace(0, 1, 300)),
              r"2 signals not strictly between 0 and 1 \(min 0, max 1\); rank them into the "
              r"open interval")
    sig_fails(signals(values=[0.5] * 300), "all 300 signals are the same value 0.5")


def test_the_universe_must_be_a_signals_universe() -> None:
    sig_fails(signals(), r"live universe has none of the Signals ticker columns .*is the model's "
              r"tournament or data version right\?", universe=pd.DataFrame({"id": TICKERS}))


def test_numerai_tools_has_the_last_word() -> None:
    values = np.full(300, 0.5)
    values[0] = 0.5 + 1e-12  # not constant for us, zero standard deviation for numerai-tools
    sig_fails(signals(values=values), "numerai-tools rejected the submission: "
              "invalid_submission_values")


def test_crypto_needs_symbols_of_the_universe() -> None:
    frame = pd.DataFrame({"symbol": SYMBOLS, "signal": np.linspace(0.1, 0.9, 150)})
    out = validate_predictions(frame, CRYPTO_UNIVERSE, "cry", tournament=12)
    assert list(out.columns) == ["symbol", "signal"] and len(out) == 150

    def fails(predictions: pd.DataFrame, message: str) -> None:
        with pytest.raises(ValidationError, match=message):
            validate_predictions(predictions, CRYPTO_UNIVERSE, "cry", tournament=12)

    fails(frame.head(99), r"^model 'cry': 99 symbols submitted; Numerai needs at least 100 of "
          r"this round's universe \(150 symbols\)")
    fails(frame.assign(symbol=[*SYMBOLS[:-2], "DOGE2", "PEPE2"]),
          r"^model 'cry': 2 symbols are not in this round's universe \(e\.g\. 'DOGE2', 'PEPE2'\)"
          r"; predict only on the symbol values of this round's live universe "
          r"\(crypto/v2\.0/live_universe\.parquet\)$")
    fails(frame.rename(columns={"symbol": "numerai_ticker"}),
          r"no ticker column .*a Crypto submission needs one of \['symbol'\]")
