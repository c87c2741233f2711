"""One model alone in this process, with every core: its load and predict times.

    python bench/measure_model.py PREDICTOR_REF LIVE_PARQUET
    # prints {"load_s", "predict_s", "cpu_s"}: wall times, and the CPU time of both (all threads)

The portfolio limit's term for one model (bench/portfolios.py). The predictor is loaded and
called as a worker would (the executor's own loader), but in a process of its own whose
native libraries may use every core; the live data is read, and the libraries every worker
imports once (LightGBM, cloudpickle) are imported, before the clock starts.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pandas as pd

from numerai_autopilot.executor.predictors import load_predictor, parse_predictor


def main() -> None:
    ref, live_path = sys.argv[1], Path(sys.argv[2])
    # the libraries a worker has imported once for every model: not this model's cost
    import cloudpickle  # noqa: F401
    import lightgbm  # noqa: F401

    live = pd.read_parquet(live_path)
    if "id" in live.columns:
        live = live.set_index("id")
    spec = parse_predictor(ref, Path("/"))
    cpu = time.process_time()
    start = time.perf_counter()
    loaded = load_predictor(spec)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    loaded.function(live)
    predict_s = time.perf_counter() - start
    print(json.dumps({"load_s": round(load_s, 4), "predict_s": round(predict_s, 4),
                      "cpu_s": round(time.process_time() - cpu, 4)}))


if __name__ == "__main__":
    main()
