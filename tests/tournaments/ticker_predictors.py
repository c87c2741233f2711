"""Signals and Crypto predictors for the tournament tests (loaded as `file.py:function`).

Each gets the round's live universe, indexed by `numerai_ticker` (Signals) or `symbol`
(Crypto), and returns a ticker column and `signal`, or a Series of signals on the index.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd


def _open_ranks(score: pd.Series) -> pd.Series:
    """Ranks strictly inside (0, 1), as Numerai's Signals rules want."""
    return (score.rank(method="first") - 0.5) / len(score)


def signals_good(live: pd.DataFrame) -> pd.DataFrame:
    features = [c for c in live.columns if c.startswith("feature_")]
    signal = _open_ranks(live[features].astype("float32").mean(axis=1))
    return pd.DataFrame({"numerai_ticker": live.index, "signal": signal.to_numpy()})


def signals_series(live: pd.DataFrame) -> pd.Series:
    return _open_ranks(pd.Series(np.arange(len(live), dtype="float64"), index=live.index))


def signals_too_few(live: pd.DataFrame) -> pd.DataFrame:
    return signals_good(live).head(40)


def signals_unknown(live: pd.DataFrame) -> pd.DataFrame:
    good = signals_good(live)
    extra = pd.DataFrame({"numerai_ticker": [f"NOPE{i} US" for i in range(40)],
                          "signal": np.linspace(0.1, 0.9, 40)})
    return pd.concat([good, extra], ignore_index=True)


def _symbol_score(symbols: pd.Index) -> pd.Series:
    # a stand-in for the market data a real crypto model would load itself
    return pd.Series([zlib.crc32(s.encode()) % 10_007 for s in symbols], index=symbols,
                     dtype="float64")


def crypto_good(live: pd.DataFrame) -> pd.DataFrame:
    signal = _open_ranks(_symbol_score(live.index))
    return pd.DataFrame({"symbol": live.index, "signal": signal.to_numpy()})


def crypto_too_few(live: pd.DataFrame) -> pd.DataFrame:
    return crypto_good(live).head(99)


def crypto_unknown(live: pd.DataFrame) -> pd.DataFrame:
    good = crypto_good(live)
    return good.assign(symbol=[*good["symbol"].iloc[:-3], "NOPE1", "NOPE2", "NOPE3"])


def classic_good(live_features: pd.DataFrame) -> pd.DataFrame:
    features = [c for c in live_features.columns if c.startswith("feature_")]
    score = live_features[features].astype("float32").mean(axis=1)
    return score.rank(pct=True).to_frame("prediction")
