"""A LightGBM predictor: loads `lgbm_small.txt` beside this file when imported.

The demo trains the model on the sandbox's train data (small feature set) and copies this
file next to it. The booster is loaded at import, as a predictor should: the worker imports
the file while the round's data downloads and keeps it loaded between rounds.
"""

from __future__ import annotations

import json
from pathlib import Path

import lightgbm
import pandas as pd

HERE = Path(__file__).resolve().parent
BOOSTER = lightgbm.Booster(model_file=str(HERE / "lgbm_small.txt"))
FEATURES: list[str] = json.loads((HERE / "lgbm_small.features.json").read_text())


def predict(live_features: pd.DataFrame) -> pd.DataFrame:
    raw = BOOSTER.predict(live_features[FEATURES].to_numpy(dtype="float32"), num_threads=1)
    return pd.Series(raw, index=live_features.index).rank(pct=True).to_frame("prediction")
