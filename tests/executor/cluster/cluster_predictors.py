"""Predictors for the cluster tests, loaded by path (`file.py:function`) on the workers."""

from __future__ import annotations

import time

import pandas as pd


def good(live_features: pd.DataFrame) -> pd.DataFrame:
    features = [c for c in live_features.columns if c.startswith("feature_")]
    return live_features[features].astype("float32").mean(axis=1).rank(pct=True).to_frame("prediction")


def slow(live_features: pd.DataFrame) -> pd.DataFrame:
    time.sleep(4)
    return good(live_features)
