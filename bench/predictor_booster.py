"""A heavy portfolio's predictor: LightGBM on all features, as Numerai's example models.

The benchmark copies this file once per model next to its booster (`standard_07.py` loads
`standard_07.txt`). The booster is loaded at import, as the README asks of a predictor: the
worker imports the file while the round's data downloads and keeps it warm between rounds.
It leaves LightGBM's thread count to the runner (no `num_threads`): the executor gives a
prediction the cores that are free.
"""

from __future__ import annotations

import json
from pathlib import Path

import lightgbm
import pandas as pd

HERE = Path(__file__).resolve()
BOOSTER = lightgbm.Booster(model_file=str(HERE.with_suffix(".txt")))
FEATURES: list[str] = json.loads((HERE.parent / "features_all.json").read_text())


def predict(live_features: pd.DataFrame) -> pd.DataFrame:
    raw = BOOSTER.predict(live_features[FEATURES].to_numpy(dtype="float32"))
    return pd.Series(raw, index=live_features.index).rank(pct=True).to_frame("prediction")
