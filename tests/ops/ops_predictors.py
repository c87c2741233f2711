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


def held(live_features: pd.DataFrame) -> pd.DataFrame:
    """Predicts once the file named by $OPS_RELEASE exists (120 s at most): a run a test
    holds mid-prediction for as long as it needs."""
    import os
    from pathlib import Path

    release = Path(os.environ["OPS_RELEASE"])
    deadline = time.monotonic() + 120
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    return good(live_features)
