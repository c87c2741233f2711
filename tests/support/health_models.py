"""Prediction-health tests' model and rounds: a Model Upload pickle of a linear model fitted
on the sandbox's train data, the same model broken the way a reordered feature list breaks
one (its weights applied to shuffled features), and a round played to its end."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pandas as pd
from server_harness import RunningServer

from numerai_autopilot.ledger import Run, RunState
from numerai_autopilot.sandbox.testing import RunningSandbox


def play_round(sandbox: RunningSandbox, server: RunningServer, models: int,
               timeout: float = 90.0) -> dict[str, Run]:
    """Open the next round (its webhooks start the runs); its runs once final or held."""
    number = sandbox.open_round()["number"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = {r.model_name: r for r in server.runs() if r.round_number == number}
        if len(runs) == models and all(r.is_final or r.state is RunState.HELD
                                       for r in runs.values()):
            return runs
        time.sleep(0.1)
    raise AssertionError(f"round {number}: runs not done after {timeout} s")


def write_linear_pickle(data_dir: Path, path: Path, *, shuffled: bool = False) -> None:
    """Fit on `data_dir`'s (a sandbox's) train.parquet and write the pickle to `path`,
    atomically (a worker never reads half a file); `shuffled`: the broken model."""
    train = pd.read_parquet(data_dir / "static" / "v5.3" / "train.parquet")
    features = [c for c in train.columns if c.startswith("feature_")]
    target = next(c for c in train.columns if c.startswith("target"))
    train = train[train[target].notna()]
    x = train[features].to_numpy(dtype="float32")
    weights = np.linalg.lstsq(np.column_stack([x, np.ones(len(x))]), train[target].to_numpy(),
                              rcond=None)[0]
    used = list(np.random.default_rng(7).permutation(features)) if shuffled else features
    partial = path.with_suffix(".partial")
    with partial.open("wb") as handle:
        cloudpickle.dump(_predict(used, weights), handle)
    partial.replace(path)


def _predict(features: list[str], weights: Any) -> Any:
    def predict(live_features: Any) -> Any:
        import numpy as np
        import pandas as pd

        x = live_features[features].to_numpy(dtype="float32")
        score = np.column_stack([x, np.ones(len(x))]) @ weights
        return pd.Series(score, index=live_features.index).rank(pct=True).to_frame("prediction")

    return predict
