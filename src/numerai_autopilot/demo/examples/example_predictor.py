"""Your predictor: edit `predict`, keep its signature.

It is called with the round's live features (a DataFrame indexed by id, columns `era` and
`feature_*`) and, if you add a second parameter, the live benchmark models. Return a DataFrame
with a `prediction` column on the same index (or a Series), values within [0, 1].
Load heavy things once (module level or functools.cache): workers keep this module warm
between rounds.
"""

from __future__ import annotations

import pandas as pd


def predict(live_features: pd.DataFrame) -> pd.DataFrame:
    features = [c for c in live_features.columns if c.startswith("feature_")]
    score = live_features[features].astype("float32").mean(axis=1)
    return score.rank(pct=True).to_frame("prediction")
