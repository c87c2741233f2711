"""The sandbox as its own process for the benchmark: Numerai-sized data, or small with --quick.

    python bench/sandbox_main.py --port 8700 --data-dir DIR --models a,b,c [--quick]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from numerai_autopilot.sandbox.server import serve
from numerai_autopilot.sandbox.settings import DataSizes, SandboxSettings, parse_models

# --quick: a tenth of the live rows and features; the same shape otherwise.
QUICK = DataSizes(live_rows=1_000, n_features=300, small_features=42, medium_features=120,
                  train_rows=5_000, validation_rows=1_000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--models", required=True)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    settings = SandboxSettings(data_dir=args.data_dir, models=parse_models(args.models),
                               sizes=QUICK if args.quick else DataSizes(), seed=3)
    serve(settings, host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
