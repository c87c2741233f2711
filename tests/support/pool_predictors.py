"""Predictors used by the server tests (loaded by path as `file.py:function`)."""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd


def good(live_features: pd.DataFrame) -> pd.DataFrame:
    features = [c for c in live_features.columns if c.startswith("feature_")]
    return live_features[features].astype("float32").mean(axis=1).rank(pct=True).to_frame("prediction")


def with_benchmarks(live_features: pd.DataFrame, live_benchmark_models: pd.DataFrame) -> pd.Series:
    return live_benchmark_models.reindex(live_features.index).iloc[:, 0].rank(pct=True)


def raises(live_features: pd.DataFrame) -> pd.DataFrame:
    raise ValueError("model file is corrupt")


def hangs(live_features: pd.DataFrame) -> pd.DataFrame:
    time.sleep(3600)
    raise AssertionError("unreachable")


def exits(live_features: pd.DataFrame) -> pd.DataFrame:
    os._exit(3)


def nan(live_features: pd.DataFrame) -> pd.DataFrame:
    out = good(live_features)
    out.iloc[:17, 0] = np.nan
    return out


def missing_ids(live_features: pd.DataFrame) -> pd.DataFrame:
    return good(live_features).iloc[:-12]


def out_of_range(live_features: pd.DataFrame) -> pd.DataFrame:
    out = good(live_features)
    out.iloc[:3, 0] = 1.4
    return out


def takes_a_moment(live_features: pd.DataFrame) -> pd.DataFrame:
    time.sleep(0.5)
    return good(live_features)


def slow(live_features: pd.DataFrame) -> pd.DataFrame:
    time.sleep(4)
    return good(live_features)
