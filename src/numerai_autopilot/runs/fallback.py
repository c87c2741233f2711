"""Fallback predictions: used when a model's own predictor fails, times out or is invalid.

`fallback = "benchmark:COLUMN"` takes that column of the round's live benchmark models
(data, read here: no user code); any other value is a predictor reference run like the
primary one, in a worker. `benchmark_predictions` raises PredictorError naming the model
when the column or the benchmark file is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from numerai_autopilot.errors import PredictorError

if TYPE_CHECKING:  # pandas is slow to import: kept off the server's start-up path
    import pandas as pd

BENCHMARK_PREFIX = "benchmark:"


def is_benchmark(fallback: str) -> bool:
    return fallback.startswith(BENCHMARK_PREFIX)


def benchmark_predictions(path: Path | None, fallback: str, model_name: str) -> pd.DataFrame:
    """The named benchmark column as a `prediction` frame indexed by id."""
    from pyarrow import feather

    column = fallback.removeprefix(BENCHMARK_PREFIX)
    if path is None:
        raise PredictorError(f"model '{model_name}': fallback {fallback!r} needs live benchmark "
                             "models, which this tournament does not publish")
    table = feather.read_table(path, memory_map=True)
    if column not in table.column_names:
        have = ", ".join(c for c in table.column_names if c != "id")
        raise PredictorError(f"model '{model_name}': fallback column {column!r} is not in "
                             f"live_benchmark_models (it has: {have})")
    frame = table.select(["id", column]).to_pandas()
    if "id" in frame.columns:  # else pandas metadata already made it the index
        frame = frame.set_index("id")
    return frame.rename(columns={column: "prediction"})
