"""Predictors the executor tests run in workers (loaded by module name and by path)."""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd


def good(live_features: pd.DataFrame) -> pd.DataFrame:
    preds = live_features["feature_0"].rank(pct=True)
    return pd.DataFrame({"prediction": preds}, index=live_features.index)


def good_series(live_features: pd.DataFrame) -> pd.Series:
    return live_features["feature_1"].rank(pct=True).rename("whatever")


def with_benchmarks(live_features: pd.DataFrame,
                    live_benchmark_models: pd.DataFrame) -> pd.DataFrame:
    bench = live_benchmark_models.loc[live_features.index, "v52_lgbm_teager60"]
    return pd.DataFrame({"prediction": bench}, index=live_features.index)


def boom(live_features: pd.DataFrame) -> pd.DataFrame:
    raise ValueError("feature_42 is missing")


def hang(live_features: pd.DataFrame) -> pd.DataFrame:
    time.sleep(3600)
    raise AssertionError("unreachable")


def crash(live_features: pd.DataFrame) -> pd.DataFrame:
    os._exit(3)


def hog(live_features: pd.DataFrame) -> pd.DataFrame:
    chunks = []
    for _ in range(60):  # up to ~3 GB, 50 MB at a time, touched so RSS grows
        chunks.append(np.ones(50_000_000 // 8))
        time.sleep(0.01)
    raise AssertionError("the memory limit should have stopped this")


def wrong_columns(live_features: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"score": 0.5, "rank": 1.0}, index=live_features.index)


def not_a_frame(live_features: pd.DataFrame) -> list[float]:
    return [0.5] * len(live_features)


def text_predictions(live_features: pd.DataFrame) -> pd.Series:
    return pd.Series("high", index=live_features.index)


def writes_in_place(live_features: pd.DataFrame) -> pd.DataFrame:
    live_features.iloc[:, 1] = 4  # feature_0: the column good() ranks
    live_features["feature_0"] += 1
    live_features["extra"] = 1.0
    return good(live_features)


NOT_CALLABLE = 3


def half_the_ids(live_features: pd.DataFrame) -> pd.DataFrame:
    """Well-formed output for only half the live rows: valid for the executor, not for
    Numerai."""
    return good(live_features).iloc[: len(live_features) // 2]


def sees_its_start(live_features: pd.DataFrame) -> pd.DataFrame:
    """Good, once the scheduler already holds this task's start (what the executor relies on
    to tell a task that ran from one only queued when a worker dies)."""
    from distributed import get_worker
    from distributed.utils import sync

    from numerai_autopilot.executor.worker_side import TOPIC

    worker = get_worker()
    key = worker.get_current_task()
    events = sync(worker.loop, worker.scheduler.events, topic=TOPIC)
    if not any(e.get("key") == key and e.get("event") == "started" for _, e in events):
        raise RuntimeError(f"predictor code ran before the scheduler had task {key}'s start")
    return good(live_features)


def snoop(live_features: pd.DataFrame) -> pd.DataFrame:
    """What a predictor can reach: its environment, and the scheduler's process (raised)."""
    import json

    from distributed import get_client

    def on_scheduler() -> dict[str, object]:
        import sys
        return {"pid": os.getpid(), "environ": sorted(os.environ),
                "modules": sorted(m for m in sys.modules if m.startswith("numerai_autopilot"))}

    found = {"worker": sorted(os.environ),  # the names; the test knows which are secrets
             "scheduler": get_client().run_on_scheduler(on_scheduler)}
    raise RuntimeError("found " + json.dumps(found))
