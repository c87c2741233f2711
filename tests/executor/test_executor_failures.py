"""A predictor that raises, hangs, crashes its process or outgrows its memory fails alone."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from executor_data import ROWS, executing, until_no_task_runs, write_live

from numerai_autopilot.config import ExecutorConfig
from numerai_autopilot.errors import PredictorError
from numerai_autopilot.executor import (
    Executor,
    PredictJob,
    PredictorRaised,
    PredictorTimeout,
    PredictOutcome,
    WorkerDied,
    parse_predictor,
)
from numerai_autopilot.executor.slots import WIDE_HOLD_S

HERE = Path(__file__).parent  # the predictor files these tests load

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def executor(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Executor]:
    local = tmp_path_factory.mktemp("dask")
    async with Executor(ExecutorConfig(workers=2, memory_limit="1GiB"),
                        local_directory=local) as ex:
        yield ex


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_live(tmp_path_factory.mktemp("round") / "live.arrow")


def job(function: str, live: Path, name: str, timeout_s: float = 60,
        memory: int | None = None) -> PredictJob:
    return PredictJob(run_id=f"run-{name}", model_name=name,
                      predictor=parse_predictor(f"predictors_fixture:{function}", HERE),
                      live_path=live, timeout_s=timeout_s, memory_limit_bytes=memory)


async def _bad_and_good(executor: Executor, bad: PredictJob,
                        live: Path) -> tuple[BaseException, list[PredictOutcome]]:
    """The bad job next to three good ones, all at once."""
    results = await asyncio.gather(
        executor.predict(bad),
        *(executor.predict(job("good", live, f"good{i}")) for i in range(3)),
        return_exceptions=True,
    )
    error, *goods = results
    assert isinstance(error, BaseException), f"{bad.model_name} did not fail"
    outs = [g for g in goods if isinstance(g, PredictOutcome)]
    assert len(outs) == 3, f"a good model failed: {goods}"
    assert all(len(o.predictions) == ROWS for o in outs)
    return error, outs


async def _still_works(executor: Executor, live: Path) -> None:
    # twice, so both workers (the replaced one included) have a go
    outs = await asyncio.gather(executor.predict(job("good", live, "after1")),
                                executor.predict(job("good", live, "after2")))
    assert all(len(o.predictions) == ROWS for o in outs)


async def test_raise_fails_alone(executor: Executor, live: Path) -> None:
    error, _ = await _bad_and_good(executor, job("boom", live, "alpha"), live)
    assert isinstance(error, PredictorRaised)
    assert "model 'alpha': predictor raised ValueError: feature_42 is missing" in str(error)
    await _still_works(executor, live)


async def test_hang_times_out_and_its_worker_is_replaced(executor: Executor,
                                                         live: Path) -> None:
    error, _ = await _bad_and_good(executor, job("hang", live, "alpha", timeout_s=1.5), live)
    assert isinstance(error, PredictorTimeout)
    assert str(error).startswith("model 'alpha': predictor timed out after 1.5 s")
    await _still_works(executor, live)


async def test_a_predictor_cancelled_while_it_runs_is_stopped_with_its_worker(
        executor: Executor, live: Path) -> None:
    # Dask cannot stop a thread: left running, the abandoned predictor (an hour's sleep)
    # would keep its worker's thread, and the next task sent there would wait behind it
    before = set((await executor.client.scheduler.identity())["workers"])
    hung = asyncio.ensure_future(executor.predict(job("hang", live, "stopped", timeout_s=7200)))
    deadline = time.monotonic() + 60
    while not any((await executor.client.run(executing, on_error="ignore")).values()):
        assert time.monotonic() < deadline, "the predictor never started"
        await asyncio.sleep(0.05)
    hung.cancel()
    with pytest.raises(asyncio.CancelledError):
        await hung
    deadline = time.monotonic() + 30
    while not before - set((await executor.client.scheduler.identity())["workers"]):
        assert time.monotonic() < deadline, "the abandoned predictor's worker lives on"
        await asyncio.sleep(0.05)
    await until_no_task_runs(executor.client, 60)
    await asyncio.wait_for(_still_works(executor, live), 60)
    after = set((await executor.client.scheduler.identity())["workers"])
    assert len(before - after) == 1  # its worker, and only that one, was replaced


async def test_process_exit_fails_alone_and_is_not_rerun(executor: Executor,
                                                         live: Path) -> None:
    before = await executor.client.scheduler.identity()
    error, _ = await _bad_and_good(executor, job("crash", live, "alpha"), live)
    assert isinstance(error, WorkerDied)
    assert str(error).startswith("model 'alpha': worker died (exit code 3)")
    await _still_works(executor, live)
    # only one worker died: the poisoned task was not re-run on another worker
    after = await executor.client.scheduler.identity()
    assert len(set(before["workers"]) - set(after["workers"])) == 1


async def test_predictor_code_runs_only_once_its_start_is_published(executor: Executor,
                                                                     live: Path) -> None:
    # Each predictor asks the scheduler for its own task's start event and fails without it.
    outs = await asyncio.gather(*(executor.predict(job("sees_its_start", live, f"m{i}"))
                                  for i in range(40)))
    assert all(len(o.predictions) == ROWS for o in outs)


async def test_a_process_ended_at_once_fails_alone_and_is_not_rerun(executor: Executor,
                                                                   live: Path) -> None:
    # The import ends the process a moment after the task began: the start must reach the
    # executor before any user code runs, or the task passes for one that was only queued on
    # a dead worker and is run again, killing another worker each time.
    before = await executor.client.scheduler.identity()
    crash = PredictJob(run_id="run-alpha", model_name="alpha",
                       predictor=parse_predictor("crash_on_import.py:predict", HERE),
                       live_path=live, timeout_s=60)
    error, _ = await _bad_and_good(executor, crash, live)
    assert isinstance(error, WorkerDied)
    assert str(error).startswith("model 'alpha': worker died (exit code 3) while predicting")
    await _still_works(executor, live)
    after = await executor.client.scheduler.identity()
    assert len(set(before["workers"]) - set(after["workers"])) == 1


async def test_memory_limit_fails_alone(executor: Executor, live: Path) -> None:
    error, _ = await _bad_and_good(
        executor, job("hog", live, "alpha", memory=300 * 2**20), live)
    assert isinstance(error, WorkerDied)
    assert str(error).startswith("model 'alpha': worker died: memory limit 300 MiB")
    await _still_works(executor, live)


async def test_worker_memory_limit_applies_without_a_model_limit(
    executor: Executor, live: Path
) -> None:
    with pytest.raises(WorkerDied, match="model 'alpha': worker died: worker memory limit "
                                         "1 GiB"):
        await executor.predict(job("hog", live, "alpha"))
    await _still_works(executor, live)


async def test_errors_are_predictor_errors() -> None:
    for cls in (PredictorRaised, PredictorTimeout, WorkerDied):
        assert issubclass(cls, PredictorError)


async def test_external_scheduler_with_scattered_round_data(executor: Executor,
                                                            live: Path) -> None:
    # joined by address like an external cluster: timeouts go through the nanny
    # (restart_workers), round files travel as scattered bytes and are sent again when
    # the workers holding them die
    config = ExecutorConfig(scheduler=executor.client.scheduler.address)
    assert config.round_file_transfer == "scatter"
    async with Executor(config) as remote:
        results = await asyncio.gather(
            remote.predict(job("hang", live, "alpha", timeout_s=1.5)),
            remote.predict(job("crash", live, "beta")),
            remote.predict(job("good", live, "gamma")),
            return_exceptions=True,
        )
        assert isinstance(results[0], PredictorTimeout), results[0]
        assert isinstance(results[1], WorkerDied), results[1]
        assert str(results[1]).startswith("model 'beta': worker died while predicting")
        assert isinstance(results[2], PredictOutcome), results[2]
        for name in ("after1", "after2"):
            out = await remote.predict(job("good", live, name))
            assert len(out.predictions) == ROWS


async def test_a_hanging_predictor_holds_up_no_other_model(executor: Executor,
                                                           live: Path) -> None:
    # Two tasks per worker thread are in flight: none may wait behind the hanging one.
    order: list[str] = []

    async def predict(name: str, function: str, timeout_s: float = 60) -> None:
        with pytest.raises(PredictorTimeout) if function == "hang" else contextlib.nullcontext():
            await executor.predict(job(function, live, name, timeout_s=timeout_s))
        order.append(name)

    # 9 models on this machine's cores: alpha, asking first, may run wide and hold the
    # others back for `WIDE_HOLD_S` (executor/slots.py), never longer
    await asyncio.gather(predict("alpha", "hang", timeout_s=WIDE_HOLD_S + 10),
                         *(predict(f"good{i}", "good") for i in range(8)))
    assert order[-1] == "alpha", order  # every good model finished before the timeout
    await _still_works(executor, live)
