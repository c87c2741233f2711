"""Predictors for the ops tests (loaded by path as `file.py:function`)."""

from __future__ import annotations

import time

import pandas as pd


def good(live_features: pd.DataFrame) -> pd.DataFrame:
    features = [c for c in live_features.columns if c.startswith("feature_")]
    return live_features[features].astype("float32").mean(axis=1).rank(pct=True).to_frame("prediction")


def raises(live_features: pd.DataFrame) -> pd.DataFrame:
    raise ValueError("model file is corrupt")


def slow(live_features: pd.DataFrame) -> pd.DataFrame:
    time.sleep(6)
    return good(live_features)
