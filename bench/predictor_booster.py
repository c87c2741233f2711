"""A heavy portfolio's predictor: LightGBM on all features, as Numerai's example models.

The benchmark copies this file once per model next to its booster (`standard_07.py` loads
`standard_07.txt`); each copy loads its booster once per worker process and keeps it warm.
It leaves LightGBM's thread count to the runner (no `num_threads`): the executor gives a
prediction the cores that are free.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import lightgbm  # at load, as a user's module does: the runner then sees its OpenMP
import pandas as pd

HERE = Path(__file__).resolve()


@cache
def _model() -> tuple[Any, list[str]]:
    booster = lightgbm.Booster(model_file=str(HERE.with_suffix(".txt")))
    features: list[str] = json.loads((HERE.parent / "features_all.json").read_text())
    return booster, features


def predict(live_features: pd.DataFrame) -> pd.DataFrame:
    booster, features = _model()
    raw = booster.predict(live_features[features].to_numpy(dtype="float32"))
    return pd.Series(raw, index=live_features.index).rank(pct=True).to_frame("prediction")
