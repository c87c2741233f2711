"""A Signals predictor: a score per ticker of the live universe, as a signal in (0, 1).

Reference it as `numerai_autopilot.demo.examples.signals:predict` with `tournament = "signals"`.
It gets this round's universe (`signals/v2.1/live.parquet`) indexed by `numerai_ticker`;
a real model would load its own market data for these tickers here.
"""

from __future__ import annotations

import pandas as pd


def predict(live_universe: pd.DataFrame) -> pd.DataFrame:
    features = [c for c in live_universe.columns if c.startswith("feature_")]
    score = live_universe[features].astype("float32").mean(axis=1)
    # ranks strictly inside (0, 1): Numerai refuses signals of exactly 0 or 1
    signal = (score.rank(method="first") - 0.5) / len(score)
    return pd.DataFrame({"numerai_ticker": live_universe.index, "signal": signal.to_numpy()})
