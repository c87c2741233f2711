"""A predictor file whose import ends its worker process at once (a crash in native code
while loading a model, say). Only inside a Dask task: imported anywhere else, it is inert."""

from __future__ import annotations

import os

import pandas as pd


def _in_a_worker_task() -> bool:
    from distributed import get_worker

    try:
        get_worker()
    except ValueError:
        return False
    return True


if _in_a_worker_task():
    os._exit(3)


def predict(live_features: pd.DataFrame) -> pd.DataFrame:
    raise AssertionError("unreachable in a worker: the import ended the process")
