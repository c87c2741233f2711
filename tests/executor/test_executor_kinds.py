"""Each predictor kind runs on real LocalCluster workers; loaded models stay warm."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
from collections.abc import AsyncIterator
from pathlib import Path

import cloudpickle
import pandas as pd
import pytest
import pytest_asyncio
from executor_data import ROWS, live_ids, write_benchmarks, write_live

from numerai_autopilot.config import ExecutorConfig
from numerai_autopilot.errors import PredictorError, ValidationError
from numerai_autopilot.executor import (
    Executor,
    PredictJob,
    PredictorLoadError,
    PredictorOutputError,
    PredictorRaised,
    parse_predictor,
)

HERE = Path(__file__).parent  # the predictor files these tests load

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def executor(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Executor]:
    local = tmp_path_factory.mktemp("dask")
    async with Executor(ExecutorConfig(workers=2, memory_limit="2GiB"),
                        local_directory=local) as ex:
        yield ex


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("round")
    return write_live(folder / "live.arrow"), write_benchmarks(folder / "bench.arrow")


def job(ref: str, data: tuple[Path, Path], base: Path = HERE, bench: bool = False,
        name: str = "alpha") -> PredictJob:
    return PredictJob(run_id="run-1", model_name=name, predictor=parse_predictor(ref, base),
                      live_path=data[0], benchmark_path=data[1] if bench else None,
                      timeout_s=60)


def assert_predictions(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == ["prediction"]
    assert frame.index.name == "id"
    assert frame["prediction"].dtype == "float64"
    assert list(frame.index) == live_ids()


async def test_module_function(executor: Executor, data: tuple[Path, Path]) -> None:
    out = await executor.predict(job("predictors_fixture:good", data))
    assert_predictions(out.predictions)
    assert out.worker.startswith("tcp://127.0.0.1:")
    assert out.compute_s >= 0


async def test_file_function_returning_a_series(executor: Executor,
                                                data: tuple[Path, Path]) -> None:
    out = await executor.predict(job("predictors_fixture.py:good_series", data))
    assert_predictions(out.predictions)


def _pickle(path: Path, two_args: bool) -> Path:
    if two_args:
        def predict(live_features: pd.DataFrame, live_benchmark_models: pd.DataFrame) -> object:
            return pd.DataFrame({"prediction": live_benchmark_models["v52_lgbm_cyrusd20"]},
                                index=live_features.index)
    else:
        def predict(live_features: pd.DataFrame) -> object:  # type: ignore[misc]
            return pd.DataFrame({"prediction": live_features["feature_3"].rank(pct=True)})
    path.write_bytes(cloudpickle.dumps(predict))
    return path


async def test_model_upload_pickle_with_one_argument(
    executor: Executor, data: tuple[Path, Path], tmp_path: Path
) -> None:
    _pickle(tmp_path / "model.pkl", two_args=False)
    out = await executor.predict(job("model.pkl", data, base=tmp_path))
    assert_predictions(out.predictions)


async def test_model_upload_pickle_with_benchmarks(
    executor: Executor, data: tuple[Path, Path], tmp_path: Path
) -> None:
    _pickle(tmp_path / "model.pkl", two_args=True)
    out = await executor.predict(job("model.pkl", data, base=tmp_path, bench=True))
    assert_predictions(out.predictions)
    expected = pd.read_feather(data[1]).set_index("id")["v52_lgbm_cyrusd20"]
    assert out.predictions["prediction"].tolist() == expected.tolist()


async def test_benchmark_predictor_without_benchmark_file(
    executor: Executor, data: tuple[Path, Path]
) -> None:
    info = await executor.inspect(parse_predictor("predictors_fixture:with_benchmarks", HERE))
    assert info.wants_benchmarks
    with pytest.raises(PredictorLoadError, match="no benchmark models were given"):
        await executor.predict(job("predictors_fixture:with_benchmarks", data))
    out = await executor.predict(job("predictors_fixture:with_benchmarks", data, bench=True))
    assert_predictions(out.predictions)


async def test_loaded_predictor_stays_warm(executor: Executor, data: tuple[Path, Path],
                                           tmp_path: Path) -> None:
    (tmp_path / "warm.py").write_text(
        "import pandas as pd\n\ndef predict(live):\n"
        "    return pd.Series(live['feature_2'].rank(pct=True))\n")
    outs = [await executor.predict(job("warm.py:predict", data, base=tmp_path))
            for _ in range(4)]
    spec_key = parse_predictor("warm.py:predict", tmp_path).key
    loads = {w: stats.get(spec_key, 0) for w, stats in (await executor.cache_stats()).items()}
    used = {o.worker for o in outs}
    # one load per worker that ran it, however many predictions it made
    assert sum(loads.values()) == len(used) < len(outs)
    assert all(loads[w] == 1 for w in used)
    assert [o.cold for o in outs].count(True) == len(used)

    # an edited file gets a new key and is loaded again
    (tmp_path / "warm.py").write_text(
        "import pandas as pd\n\ndef predict(live):\n"
        "    return pd.Series(live['feature_4'].rank(pct=True))  # v2\n")
    os.utime(tmp_path / "warm.py", ns=(10**18, 10**18))
    out = await executor.predict(job("warm.py:predict", data, base=tmp_path))
    assert out.cold


async def test_inspect_refuses_what_cannot_load(executor: Executor) -> None:
    await executor.inspect(parse_predictor("predictors_fixture:good", HERE))
    with pytest.raises(PredictorLoadError, match="model 'predictors_fixture:nope'.*has no "
                                                 "attribute 'nope'"):
        await executor.inspect(parse_predictor("predictors_fixture:nope", HERE))
    with pytest.raises(PredictorLoadError, match="cannot import 'no_such_pkg_abc'"):
        await executor.inspect(parse_predictor("no_such_pkg_abc:predict", HERE))


@pytest.mark.parametrize(
    ("function", "error", "message"),
    [
        ("wrong_columns", PredictorOutputError,
         (r"model 'alpha': predictor returned a DataFrame with columns \['score', 'rank'\]; "
         r"a 'prediction' column .*is required")),
        ("not_a_frame", PredictorOutputError,
         "model 'alpha': predictor returned list; return a DataFrame with a 'prediction'"),
        ("text_predictions", PredictorOutputError,
         "model 'alpha': predictions have dtype .*; they must be numbers"),
        ("boom", PredictorRaised,
         (r"(?s)model 'alpha': predictor raised ValueError: feature_42 is missing\n.*"
         r"predictors_fixture.py.*in boom")),
    ],
)
async def test_bad_output_and_exceptions(
    executor: Executor, data: tuple[Path, Path], function: str,
    error: type[PredictorError], message: str,
) -> None:
    with pytest.raises(error, match=message):
        await executor.predict(job(f"predictors_fixture:{function}", data))


async def test_writing_into_live_features_is_private_to_the_predictor(
    executor: Executor, data: tuple[Path, Path]
) -> None:
    # the frame is a copy-on-write view of the mapped file, shared between predictions
    for _ in range(3):
        await executor.predict(job("predictors_fixture:writes_in_place", data))
    out = await executor.predict(job("predictors_fixture:good", data))
    expected = pd.read_feather(data[0]).set_index("id")["feature_0"].rank(pct=True)
    assert out.predictions["prediction"].tolist() == expected.tolist()


async def test_scatter_transfer_through_a_scheduler_address(
    executor: Executor, data: tuple[Path, Path]
) -> None:
    # a second executor joins the first one's scheduler as an external cluster would, and
    # ships round files as bytes once per file instead of sharing a path
    address = executor.client.scheduler.address
    config = ExecutorConfig(scheduler=address, data_transfer="scatter")
    async with Executor(config) as remote:
        outs = [await remote.predict(job("predictors_fixture:good", data, bench=True))
                for _ in range(3)]
        assert len(remote._files) == 2  # live + benchmarks, scattered once each
    for out in outs:
        assert_predictions(out.predictions)
    assert ROWS == len(outs[0].predictions)


async def test_validated_on_the_worker(executor: Executor, data: tuple[Path, Path]) -> None:
    out = await executor.predict(dataclasses.replace(job("predictors_fixture:good", data),
                                                     validate_for=8))
    assert out.predictions is None and out.rows == ROWS and out.validate_s > 0
    assert out.csv is not None
    lines = out.csv.decode().splitlines()
    assert lines[0] == "id,prediction" and len(lines) == ROWS + 1
    assert [line.split(",")[0] for line in lines[1:]] == live_ids()


async def test_a_validation_failure_on_the_worker_is_a_validation_error(
    executor: Executor, data: tuple[Path, Path]
) -> None:
    with pytest.raises(ValidationError, match=r"model 'alpha': predictor returned 150 fewer rows"):
        await executor.predict(dataclasses.replace(job("predictors_fixture:half_the_ids", data),
                                                   validate_for=8))


def _config(keys: list[str]) -> dict[str, object]:
    import dask

    return {key: dask.config.get(key) for key in keys}


async def test_the_local_cluster_keeps_quiet_clocks(executor: Executor) -> None:
    # an idle cluster's own clocks (ticks, profiler, memory monitors) cost ~0.1 of a core
    # at Dask's defaults; the workers, restarted ones included, get the slower ones
    expected = {"distributed.admin.tick.interval": "500ms",
                "distributed.worker.profile.enabled": False,
                "distributed.worker.memory.monitor-interval": "500ms"}
    on_workers = await executor.client.run(_config, list(expected))
    assert len(on_workers) == 2
    assert all(found == expected for found in on_workers.values()), on_workers
    pids = await executor.client.run(os.getpid)
    address, pid = next(iter(pids.items()))
    await executor._cluster.kill_worker(address, pid)
    for _ in range(300):  # its nanny starts a new process
        with contextlib.suppress(Exception):
            now = await executor.client.run(os.getpid)
            if len(now) == 2 and pid not in now.values():
                break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the killed worker was not replaced within 30 s")
    restarted = await executor.client.run(_config, list(expected))
    assert all(found == expected for found in restarted.values()), restarted
