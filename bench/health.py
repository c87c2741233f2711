"""Prediction health's cost: the round's shared arrays once, then each model's figures.

    python bench/health.py [MODELS]     # default 20 models
    # prints {"rows", "features", "benchmarks", "frame_s", "health_ms_median", "health_ms_max"}

On a round of the sandbox's default (Numerai-sized) files: `frame_s` is what the first
model of a round pays once (`validation.health.round_frame`: the features centred and
scaled); `health_ms_*` what each model pays (`figures`: reading its validated CSV, ranking
it, the correlations with every benchmark, the example predictions and every feature).
Predictions are random ranks in a different row order per model, as a submission CSV.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from pyarrow import feather

from numerai_autopilot.sandbox import synth
from numerai_autopilot.sandbox.settings import DataSizes
from numerai_autopilot.validation.classic import to_csv_bytes
from numerai_autopilot.validation.health import figures, round_frame


def _arrow(frame: pd.DataFrame, path: Path) -> Path:
    feather.write_feather(pa.Table.from_pandas(frame), path, compression="uncompressed")
    return path


def main() -> None:
    models = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    sizes = DataSizes()
    files = synth.live(42, "v5.3", 1200, synth.universe(42, sizes), sizes)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        live = _arrow(files.live, Path(folder) / "live.arrow")
        bench = _arrow(files.benchmark_models, Path(folder) / "bench.arrow")
        example = _arrow(files.example_preds, Path(folder) / "example.arrow")
        csvs = []
        for _ in range(models):
            order = rng.permutation(len(files.live))
            ids = files.live.index[order]
            csvs.append(to_csv_bytes(pd.DataFrame(
                {"id": ids, "prediction": (np.argsort(rng.random(len(ids))) + 0.5) / len(ids)})))
        start = time.perf_counter()
        frame = round_frame(live, bench, example, tournament=8)
        frame_s = time.perf_counter() - start
        spent = []
        for csv in csvs:
            start = time.perf_counter()
            figures(csv, frame)
            spent.append((time.perf_counter() - start) * 1000)
    print(json.dumps({"rows": len(files.live), "features": int(frame.features.shape[0]),
                      "benchmarks": files.benchmark_models.shape[1], "models": models,
                      "frame_s": round(frame_s, 3),
                      "health_ms_median": round(statistics.median(spent), 1),
                      "health_ms_max": round(max(spent), 1)}))


if __name__ == "__main__":
    main()
