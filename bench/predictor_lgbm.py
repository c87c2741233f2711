"""A realistic predictor for the benchmark: LightGBM on the `medium` feature set.

The benchmark trains `lgbm_medium.txt` on the sandbox's train data and copies this file
once per model next to it (`models/lgbm_07.py:predict`); each copy loads its own booster
once per worker process and keeps it warm, as a user's own model would.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

HERE = Path(__file__).resolve().parent


@cache
def _model() -> tuple[Any, list[str]]:
    import lightgbm

    booster = lightgbm.Booster(model_file=str(HERE / "lgbm_medium.txt"))
    features: list[str] = json.loads((HERE / "lgbm_medium.features.json").read_text())
    return booster, features


def predict(live_features: pd.DataFrame) -> pd.DataFrame:
    booster, features = _model()
    raw = booster.predict(live_features[features].to_numpy(dtype="float32"), num_threads=1)
    return pd.Series(raw, index=live_features.index).rank(pct=True).to_frame("prediction")
