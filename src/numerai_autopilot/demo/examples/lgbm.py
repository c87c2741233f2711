"""A LightGBM predictor: loads `lgbm_small.txt` beside this file once per worker.

The demo trains the model on the sandbox's train data (small feature set) and copies this
file next to it; the loaded booster stays warm in the worker between rounds.
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

    booster = lightgbm.Booster(model_file=str(HERE / "lgbm_small.txt"))
    features = json.loads((HERE / "lgbm_small.features.json").read_text())
    return booster, features


def predict(live_features: pd.DataFrame) -> pd.DataFrame:
    booster, features = _model()
    raw = booster.predict(live_features[features].to_numpy(dtype="float32"), num_threads=1)
    return pd.Series(raw, index=live_features.index).rank(pct=True).to_frame("prediction")
