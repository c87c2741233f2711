"""A plain function predictor: the mean of the small feature set, as a rank.

Reference it as `numerai_autopilot.demo.examples.plain:predict`.
"""

from __future__ import annotations

import pandas as pd


def predict(live_features: pd.DataFrame) -> pd.DataFrame:
    features = [c for c in live_features.columns if c.startswith("feature_")][:42]
    score = live_features[features].astype("float32").mean(axis=1)
    return score.rank(pct=True).to_frame("prediction")
