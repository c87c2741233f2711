"""Prediction health's figures computed on the worker, beside validation: the same figures
the server would compute, for exactly the CSV the worker validated; none when the job does
not ask, or when the worker gets the round's files as bytes (the server computes them)."""

from __future__ import annotations

from pathlib import Path

import pytest
from executor_data import write_benchmarks, write_live
from pyarrow import feather

from numerai_autopilot.config import ExecutorConfig
from numerai_autopilot.executor import Executor, PredictJob, parse_predictor
from numerai_autopilot.validation.health import figures, round_frame

pytestmark = pytest.mark.asyncio


def _example(live: Path, path: Path) -> Path:
    table = feather.read_table(live)
    scores = table.column("feature_1").to_numpy().astype(float) / 4
    feather.write_feather(table.select(["id"]).append_column("prediction", [scores]), path,
                          compression="uncompressed")
    return path


async def test_the_worker_computes_the_figures_of_the_csv_it_validated(tmp_path: Path) -> None:
    live = write_live(tmp_path / "live.arrow")
    bench = write_benchmarks(tmp_path / "bench.arrow")
    example = _example(live, tmp_path / "example.arrow")
    (tmp_path / "m.py").write_text(
        "def predict(live):\n"
        "    return (live['feature_1'] + live['feature_2'] / 10).rank(pct=True)\n")

    def job(name: str, health: bool) -> PredictJob:
        return PredictJob(run_id=f"run-{name}", model_name=name,
                          predictor=parse_predictor("m.py:predict", tmp_path), live_path=live,
                          benchmark_path=bench, example_path=example, health=health,
                          validate_for=8, timeout_s=120)

    expected_frame = round_frame(live, bench, example, tournament=8)
    config = ExecutorConfig(workers=1, memory_limit="1GiB")
    async with Executor(config, local_directory=tmp_path / "dask") as ex:
        out = await ex.predict(job("checked", True))
        assert out.csv is not None and out.figures is not None
        assert out.figures == figures(out.csv, expected_frame)
        assert out.figures["corr_example"] > 0.8 and set(out.figures) >= {
            "rows", "exposure", "corr_v52_lgbm_teager60"}
        assert (await ex.predict(job("unchecked", False))).figures is None

    scattered = ExecutorConfig(workers=1, memory_limit="1GiB", data_transfer="scatter")
    async with Executor(scattered, local_directory=tmp_path / "dask2") as ex:
        out = await ex.predict(job("scattered", True))
        assert out.csv is not None and out.figures is None  # the server computes them
