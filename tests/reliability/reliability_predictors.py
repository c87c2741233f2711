"""Predictors for the reliability suite (loaded by path as `file.py:function`).

They run in Dask worker processes spawned by the server, so they read their knobs from the
environment the test gave the server (`REL_*`).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd


def good(live_features: pd.DataFrame) -> pd.DataFrame:
    features = [c for c in live_features.columns if c.startswith("feature_")]
    return live_features[features].astype("float32").mean(axis=1).rank(pct=True).to_frame("prediction")


def slow(live_features: pd.DataFrame) -> pd.DataFrame:
    """Sleeps `REL_SLOW_S` seconds (default 4): long enough to be killed while predicting."""
    time.sleep(float(os.environ.get("REL_SLOW_S", "4")))
    return good(live_features)


def dies_once(live_features: pd.DataFrame) -> pd.DataFrame:
    """First attempt: write this worker's pid to `REL_PID_FILE` and wait to be killed.

    Once the test has created `REL_MARKER` (before killing us), a later attempt predicts.
    """
    marker = Path(os.environ["REL_MARKER"])
    if marker.exists():
        return good(live_features)
    pid_file = Path(os.environ["REL_PID_FILE"])
    pid_file.with_suffix(".tmp").write_text(str(os.getpid()))
    pid_file.with_suffix(".tmp").rename(pid_file)
    time.sleep(120)
    raise AssertionError("the test should have killed this worker")


def huge(live_features: pd.DataFrame) -> pd.DataFrame:
    """Far more rows than live ids (as if it predicted on the training data)."""
    rows = len(live_features) * 50
    index = pd.Index([f"n{i:015x}" for i in range(rows)], name="id")
    return pd.DataFrame({"prediction": np.linspace(0.01, 0.99, rows)}, index=index)


def strings(live_features: pd.DataFrame) -> pd.DataFrame:
    """Predictions as text."""
    out = good(live_features)
    return out.assign(prediction=out["prediction"].map(lambda v: f"{v:.3f}"))


def int_index(live_features: pd.DataFrame) -> pd.DataFrame:
    """The right values on a RangeIndex instead of the live ids."""
    return good(live_features).reset_index(drop=True)
