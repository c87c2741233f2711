"""Predictors of blend members (loaded by path as `file.py:function`): each gives different
predictions, and notes each call in the file named by `BLEND_TEST_CALLS`, if set, so a test
can tell that a blend ran no member's predictor again."""

from __future__ import annotations

import os
import time

import pandas as pd


def _called(name: str) -> None:
    path = os.environ.get("BLEND_TEST_CALLS")
    if path:
        with open(path, "a", encoding="utf-8") as calls:
            calls.write(f"{name}\n")


def _features(live_features: pd.DataFrame) -> pd.DataFrame:
    return live_features[[c for c in live_features.columns if c.startswith("feature_")]]


def first_half(live_features: pd.DataFrame) -> pd.DataFrame:
    _called("first_half")
    features = _features(live_features)
    half = features.iloc[:, : features.shape[1] // 2].astype("float32")
    return half.mean(axis=1).rank(pct=True).to_frame("prediction")


def second_half(live_features: pd.DataFrame) -> pd.DataFrame:
    _called("second_half")
    features = _features(live_features)
    half = features.iloc[:, features.shape[1] // 2 :].astype("float32")
    return (half.mean(axis=1).rank(pct=True) * 0.5).to_frame("prediction")


def first_feature(live_features: pd.DataFrame) -> pd.DataFrame:
    """Ties galore (one feature of five values): the blend's ranks average them."""
    _called("first_feature")
    first = _features(live_features).iloc[:, 0].astype("float32").fillna(2.0)
    return (first / 4.0).clip(0.0, 1.0).to_frame("prediction")


def slow_second_half(live_features: pd.DataFrame) -> pd.DataFrame:
    time.sleep(4)
    return second_half(live_features)


def broken(live_features: pd.DataFrame) -> pd.DataFrame:
    _called("broken")
    raise ValueError("member model file is corrupt")
