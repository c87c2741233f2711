"""A light predictor for the benchmark: the rank of the mean of 42 features (a few ms).

The benchmark copies this file once per model (`models/light_07.py:predict`), so every
model is its own predictor, loaded and kept warm on its own.
"""

from __future__ import annotations

import pandas as pd


def predict(live_features: pd.DataFrame) -> pd.DataFrame:
    features = [c for c in live_features.columns if c.startswith("feature_")][:42]
    score = live_features[features].astype("float32").mean(axis=1)
    return score.rank(pct=True).to_frame("prediction")
