"""A Crypto predictor: one signal per symbol of the live universe, in (0, 1).

Reference it as `numerai_autopilot.demo.examples.crypto:predict` with `tournament = "crypto"`.
It gets this round's universe (`crypto/v2.0/live_universe.parquet`) indexed by `symbol`.
The universe holds symbols only: a real model loads its own price history here. This example
stands in a fixed pseudo-random score per symbol, so it runs with no network.
"""

from __future__ import annotations

import zlib

import pandas as pd


def predict(live_universe: pd.DataFrame) -> pd.Series:
    symbols = live_universe.index
    score = pd.Series([zlib.crc32(str(s).encode()) for s in symbols], index=symbols,
                      dtype="float64")
    return (score.rank(method="first") - 0.5) / len(score)  # a Series of signals by symbol
