"""A model loads while the round's data downloads; the wait for the data is neither timed
nor able to leave a worker waiting, whether the download fails or the run is cancelled."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from executor_data import ROWS, until_no_task_runs, write_live

from numerai_autopilot.config import ExecutorConfig
from numerai_autopilot.errors import PredictorError
from numerai_autopilot.executor import Executor, PredictJob, parse_predictor

pytestmark = pytest.mark.asyncio(loop_scope="module")

_WAIT_S = 60.0  # far beyond any of these steps: reaching it means something hangs


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def executor(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Executor]:
    async with Executor(ExecutorConfig(workers=2, memory_limit="1GiB"),
                        local_directory=tmp_path_factory.mktemp("dask")) as ex:
        yield ex


def _model(folder: Path, name: str) -> tuple[Path, PredictJob]:
    """A predictor file that notes when it was loaded; its job reads `folder/live.arrow`,
    which is not there yet. Returns the note's path and the job."""
    marker = folder / f"{name}.loaded"
    source = folder / f"{name}.py"
    source.write_text(
        "import pathlib, time\n"
        f"pathlib.Path({str(marker)!r}).write_text(repr(time.time()))\n"
        "def predict(live):\n"
        "    return live['feature_0'].rank(pct=True).rename('prediction').to_frame()\n")
    job = PredictJob(run_id=f"run-{name}", model_name=name,
                     predictor=parse_predictor(f"{source}:predict", folder),
                     live_path=folder / "live.arrow", timeout_s=60)
    return marker, job


async def _until(path: Path) -> None:
    deadline = time.monotonic() + _WAIT_S
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        await asyncio.sleep(0.02)


async def test_the_model_loads_before_its_data_is_there(executor: Executor,
                                                        tmp_path: Path) -> None:
    marker, job = _model(tmp_path, "early")

    async def download() -> float:
        await _until(marker)  # the data comes only once the model has loaded
        await asyncio.sleep(0.3)
        write_live(job.live_path)
        return time.time()

    fetch = asyncio.ensure_future(download())
    out = await asyncio.wait_for(executor.predict(job, ready=fetch), _WAIT_S)
    assert float(marker.read_text()) < fetch.result()
    assert out.predictions is not None and len(out.predictions) == ROWS
    assert out.data_wait_s is not None and out.data_wait_s > 0
    assert out.cold and out.load_s > 0


async def test_waiting_for_the_data_does_not_count_towards_the_timeout(
        executor: Executor, tmp_path: Path) -> None:
    _, job = _model(tmp_path, "patient")

    async def download() -> None:
        await asyncio.sleep(5.0)  # twice the model's whole timeout
        write_live(job.live_path)

    fetch = asyncio.ensure_future(download())
    short = dataclasses.replace(job, timeout_s=2.5)
    out = await asyncio.wait_for(executor.predict(short, ready=fetch), _WAIT_S)
    assert out.predictions is not None and len(out.predictions) == ROWS


async def test_a_failed_download_fails_the_task_and_frees_its_worker(
        executor: Executor, tmp_path: Path) -> None:
    marker, job = _model(tmp_path, "stranded")

    async def download() -> None:
        await _until(marker)
        raise RuntimeError("Numerai answered 503")

    with pytest.raises(PredictorError, match="'stranded': the round's data could not be fetched"):
        await asyncio.wait_for(executor.predict(job, ready=asyncio.ensure_future(download())),
                               _WAIT_S)
    await _both_workers_free(executor, tmp_path)


async def test_a_cancelled_run_leaves_no_worker_waiting(executor: Executor,
                                                        tmp_path: Path) -> None:
    forever: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    tasks = []
    for name in ("gone1", "gone2"):  # one on each worker, both waiting for the data
        folder = tmp_path / name
        folder.mkdir()
        marker, job = _model(folder, name)
        tasks.append((marker, asyncio.ensure_future(executor.predict(job, ready=forever))))
    for marker, _ in tasks:
        await _until(marker)
    for _, task in tasks:
        task.cancel()
    await asyncio.gather(*(task for _, task in tasks), return_exceptions=True)
    await _both_workers_free(executor, tmp_path)


async def _both_workers_free(executor: Executor, tmp_path: Path) -> None:
    """No worker thread is left running a task (a task waiting for data that will not come
    would run for an hour), and a model still predicts."""
    await until_no_task_runs(executor.client, _WAIT_S)
    folder = tmp_path / "after"
    folder.mkdir()
    write_live(folder / "live.arrow")
    out = await asyncio.wait_for(executor.predict(_model(folder, "after")[1]), _WAIT_S)
    assert out.predictions is not None and len(out.predictions) == ROWS


async def test_a_model_failing_to_load_leaves_the_download_be(executor: Executor,
                                                              tmp_path: Path) -> None:
    source = tmp_path / "broken.py"
    source.write_text("raise ImportError('no module named lightgbm_v9')\n")
    job = PredictJob(run_id="run-broken", model_name="broken",
                     predictor=parse_predictor(f"{source}:predict", tmp_path),
                     live_path=tmp_path / "live.arrow", timeout_s=60)

    async def download() -> str:  # shared with the round's other models
        await asyncio.sleep(2.0)
        write_live(job.live_path)
        return "done"

    fetch = asyncio.ensure_future(download())
    with pytest.raises(PredictorError, match="'broken'"):
        await asyncio.wait_for(executor.predict(job, ready=fetch), _WAIT_S)
    assert not fetch.done()  # the model failed first
    assert await asyncio.wait_for(fetch, _WAIT_S) == "done"
