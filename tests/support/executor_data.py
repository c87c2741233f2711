"""Round files for executor tests: small Arrow IPC files shaped like Numerai's live data."""

from __future__ import annotations

from pathlib import Path

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
