"""Round files for executor tests: small Arrow IPC files shaped like Numerai's live data."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from pyarrow import feather

ROWS = 300
FEATURES = 20


def live_ids(rows: int = ROWS) -> list[str]:
    return [f"n{i:015x}" for i in range(rows)]


def write_live(path: Path, rows: int = ROWS, features: int = FEATURES) -> Path:
    rng = np.random.default_rng(7)
    columns: dict[str, pa.Array] = {"id": pa.array(live_ids(rows)),
                                    "era": pa.array(["X"] * rows)}
    for j in range(features):
        columns[f"feature_{j}"] = pa.array(rng.integers(0, 5, rows, dtype=np.int8))
    feather.write_feather(pa.table(columns), path, compression="uncompressed")
    return path


def write_benchmarks(path: Path, rows: int = ROWS) -> Path:
    rng = np.random.default_rng(8)
    table = pa.table({"id": pa.array(live_ids(rows)),
                      "v52_lgbm_teager60": pa.array(rng.random(rows)),
                      "v52_lgbm_cyrusd20": pa.array(rng.random(rows))})
    feather.write_feather(table, path, compression="uncompressed")
    return path


def executing(dask_worker: Any) -> int:
    """Tasks a worker's threads run now (for `client.run`)."""
    return int(dask_worker.state.executing_count)


async def until_no_task_runs(client: Any, within_s: float) -> None:
    """Return once no worker of `client`'s cluster has a thread running a task (a task
    cancelled at the scheduler may still run on its worker); AssertionError after
    `within_s` seconds."""
    deadline = time.monotonic() + within_s
    while any((await client.run(executing, on_error="ignore")).values()):  # a worker may die
        assert time.monotonic() < deadline, "a worker is still running a task"
        await asyncio.sleep(0.05)
