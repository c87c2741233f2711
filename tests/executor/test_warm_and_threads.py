"""Warm models within a memory budget, a model over its worker's limit, and native threads
that follow the free cores: on real LocalCluster workers."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path

import cloudpickle
import numpy as np
import pandas as pd
import pytest
import pytest_asyncio
from executor_data import write_live

from numerai_autopilot.config import ExecutorConfig
from numerai_autopilot.executor import (
    Executor,
    Expected,
    PredictJob,
    PredictorLoadError,
    parse_predictor,
)
from numerai_autopilot.executor.slots import SOLO_MIN_S
from numerai_autopilot.executor.threads import machine_cores

pytestmark = pytest.mark.asyncio(loop_scope="module")
MiB = 2**20


def _weights_predictor(mib: int) -> object:
    """A Model Upload style predict() that closes over `mib` MiB of weights."""
    weights = np.ones(mib * MiB, dtype=np.uint8)

    def predict(live: pd.DataFrame) -> pd.Series:
        return live["feature_0"].rank(pct=True) * float(weights[0])

    return predict


def _pickle(path: Path, mib: int) -> Path:
    path.write_bytes(cloudpickle.dumps(_weights_predictor(mib)))
    return path


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def one_worker(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Executor]:
    """One worker, 1 GiB, whose warm models may take 100 MiB together."""
    config = ExecutorConfig(workers=1, memory_limit="1GiB", warm_budget="100MiB")
    async with Executor(config, local_directory=tmp_path_factory.mktemp("dask")) as ex:
        yield ex


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_live(tmp_path_factory.mktemp("round") / "live.arrow")


def _job(ref: str, base: Path, live: Path, name: str) -> PredictJob:
    return PredictJob(run_id=f"run-{name}", model_name=name,
                      predictor=parse_predictor(ref, base), live_path=live, timeout_s=120)


async def test_warm_models_stay_within_the_budget(one_worker: Executor, live: Path,
                                                  tmp_path: Path) -> None:
    _pickle(tmp_path / "a.pkl", 60)
    _pickle(tmp_path / "b.pkl", 60)
    key_a = parse_predictor("a.pkl", tmp_path).key
    key_b = parse_predictor("b.pkl", tmp_path).key

    first = await one_worker.predict(_job("a.pkl", tmp_path, live, "a"))
    again = await one_worker.predict(_job("a.pkl", tmp_path, live, "a"))
    assert first.cold and not again.cold  # 60 MiB fits the 100 MiB budget: kept warm
    sizes = next(iter((await one_worker.client.run(_warm_sizes)).values()))
    assert list(sizes) == [key_a] and 55 * MiB <= sizes[key_a] <= 80 * MiB

    # b does not fit beside a: the least recently used (a) is dropped for it
    assert (await one_worker.predict(_job("b.pkl", tmp_path, live, "b"))).cold
    sizes = next(iter((await one_worker.client.run(_warm_sizes)).values()))
    assert list(sizes) == [key_b]

    # a is loaded again when it is needed again, and b makes room for it
    assert (await one_worker.predict(_job("a.pkl", tmp_path, live, "a"))).cold
    loads = next(iter((await one_worker.cache_stats()).values()))
    assert loads[key_a] == 2 and loads[key_b] == 1
    sizes = next(iter((await one_worker.client.run(_warm_sizes)).values()))
    assert list(sizes) == [key_a]


async def test_a_model_over_the_workers_limit_fails_alone(tmp_path: Path, live: Path) -> None:
    _pickle(tmp_path / "huge.pkl", 420)
    (tmp_path / "small.py").write_text(
        "def predict(live):\n    return live['feature_1'].rank(pct=True)\n")
    config = ExecutorConfig(workers=1, memory_limit="400MiB")
    async with Executor(config, local_directory=tmp_path / "dask") as ex:
        pids = await ex.client.run(_pid)
        huge, small = await asyncio.gather(
            ex.predict(_job("huge.pkl", tmp_path, live, "huge")),
            ex.predict(_job("small.py:predict", tmp_path, live, "small")),
            return_exceptions=True)
        assert isinstance(huge, PredictorLoadError), huge
        message = str(huge)
        assert "model 'huge'" in message and "huge.pkl" in message
        assert "420 MiB (on disk)" in message and "memory limit of 400 MiB" in message
        assert "executor.memory_limit" in message
        assert not isinstance(small, BaseException) and small.predictions is not None
        assert await ex.client.run(_pid) == pids  # refused before loading: no worker died


async def test_native_threads_follow_the_free_cores(tmp_path: Path, live: Path) -> None:
    cores = machine_cores()
    if cores < 2:
        pytest.skip("needs at least 2 cores to tell 1 thread from all of them")
    _write_probe(tmp_path, "blas", tmp_path / "threads.jsonl")
    config = ExecutorConfig(workers=2, memory_limit="1GiB")
    log = tmp_path / "threads.jsonl"
    async with Executor(config, local_directory=tmp_path / "dask") as ex:
        await ex.predict(_job("probe.py:predict", tmp_path, live, "alone"))
        alone = [json.loads(line) for line in log.read_text().split()]
        assert alone == [cores]  # one prediction in flight: every core
        log.unlink()

        many = 4 * cores
        await asyncio.gather(*(ex.predict(_job("probe.py:predict", tmp_path, live, f"m{i}"))
                               for i in range(many)))
        counts = [json.loads(line) for line in log.read_text().split()]
        assert len(counts) == many
        # asked for together: each its share of the cores, never more than all of them
        assert counts[0] == 1 and max(counts) <= cores
        # the worker's own limit is back after each prediction
        after = await ex.client.run(_blas_threads)
        assert set(after.values()) == {1}


async def test_a_rounds_remainder_runs_first_on_every_core(tmp_path: Path, live: Path) -> None:
    cores = machine_cores()
    if cores < 2:
        pytest.skip("needs at least 2 cores to tell 1 thread from all of them")
    log = _write_span_probe(tmp_path)
    config = ExecutorConfig(workers=cores, memory_limit="1GiB")
    async with Executor(config, local_directory=tmp_path / "dask") as ex:
        # one more model than cores, none seen before: the one left over would otherwise
        # run last on one thread while the other cores stand idle
        await asyncio.gather(*(ex.predict(_job("span.py:predict", tmp_path, live, f"s{i}"))
                               for i in range(cores + 1)))
    spans = sorted(json.loads(line) for line in log.read_text().splitlines())
    wide = [s for s in spans if s[0] == cores]
    assert len(wide) == 1 and sorted(s[0] for s in spans) == [1] * cores + [cores]
    assert all(start >= wide[0][2] for threads, start, _ in spans if threads == 1)


async def test_models_that_scale_run_one_after_another_on_every_core(
        tmp_path: Path, live: Path) -> None:
    cores = machine_cores()
    if cores < 2:
        pytest.skip("needs at least 2 cores to tell 1 thread from all of them")
    log = _write_span_probe(tmp_path)
    names = [f"s{i}" for i in range(cores + 1)]
    config = ExecutorConfig(workers=cores, memory_limit="1GiB")
    async with Executor(config, local_directory=tmp_path / "dask") as ex:
        # earlier rounds said: long, and faster alone on every core than side by side (their
        # threads 80 % busy: this round's run, averaged in, decides the next verdict)
        scales = Expected(SOLO_MIN_S, wide_thread_s=2.0, busy=0.8)
        ex.predict_times.update({n: scales for n in names})
        outs = await asyncio.gather(*(ex.predict(_job("span.py:predict", tmp_path, live, n))
                                      for n in names))
        # what this round measured: a model that sleeps keeps no core busy
        after = dict(ex.predict_times)
    spans = sorted(json.loads(line) for line in log.read_text().splitlines())
    assert [threads for threads, _, _ in spans] == [cores] * len(names)
    assert all(later >= end for (_, _, end), (_, later, _) in itertools.pairwise(spans)), spans
    assert all(o.threads == cores and o.cpu_s is not None for o in outs)
    assert all(after[n].scales is False and 0.4 < after[n].seconds < 5 for n in names), after


def _write_span_probe(folder: Path) -> Path:
    """`span.py:predict`, which sleeps 0.5 s and appends [its BLAS threads, start, end] to
    the returned log."""
    log = folder / "spans.jsonl"
    (folder / "span.py").write_text(
        "import json, time, threadpoolctl\n"
        "def predict(live):\n"
        "    start = time.time()\n"
        "    threads = max(p['num_threads'] for p in threadpoolctl.threadpool_info()\n"
        "                  if p['user_api'] == 'blas')\n"
        "    time.sleep(0.5)\n"
        f"    with open({str(log)!r}, 'a') as fh:\n"
        "        fh.write(json.dumps([threads, start, time.time()]) + '\\n')\n"
        "    return live['feature_2'].rank(pct=True)\n")
    return log


async def test_a_library_first_imported_in_the_call_gets_the_free_cores(
        tmp_path: Path, live: Path) -> None:
    cores = machine_cores()
    if cores < 2:
        pytest.skip("needs at least 2 cores to tell 1 thread from all of them")
    (tmp_path / "lazy.py").write_text(
        "import json\n"
        "def predict(live):\n"
        "    import sys, threadpoolctl\n"
        "    fresh = 'lightgbm' not in sys.modules\n"
        "    import lightgbm  # its OpenMP runtime loads here, inside the call\n"
        "    omp = [p['num_threads'] for p in threadpoolctl.threadpool_info()\n"
        "           if p['user_api'] == 'openmp']\n"
        f"    with open({str(tmp_path)!r} + '/lazy.json', 'w') as fh:\n"
        "        json.dump([fresh, max(omp)], fh)\n"
        "    return live['feature_2'].rank(pct=True)\n")
    config = ExecutorConfig(workers=1, memory_limit="1GiB")
    async with Executor(config, local_directory=tmp_path / "dask") as ex:
        await ex.predict(_job("lazy.py:predict", tmp_path, live, "lazy"))
        fresh, threads = json.loads((tmp_path / "lazy.json").read_text())
        assert fresh and threads == cores  # alone: every core, though loaded in the call
        # and back to one thread after it: models sharing the cores do not oversubscribe
        _write_probe(tmp_path, "openmp", tmp_path / "probe.jsonl")
        await asyncio.gather(*(ex.predict(_job("probe.py:predict", tmp_path, live, f"p{i}"))
                               for i in range(2 * cores)))
        seen = [json.loads(line) for line in (tmp_path / "probe.jsonl").read_text().split()]
        assert len(seen) == 2 * cores and seen[0] == 1


def _write_probe(folder: Path, user_api: str, log: Path) -> None:
    """probe.py:predict, which appends the threads its `user_api` libraries have to `log`."""
    (folder / "probe.py").write_text(
        "import json, threadpoolctl\n"
        "def predict(live):\n"
        "    threads = [p['num_threads'] for p in threadpoolctl.threadpool_info()\n"
        f"               if p['user_api'] == {user_api!r}]\n"
        f"    with open({str(log)!r}, 'a') as fh:\n"
        "        fh.write(json.dumps(max(threads)) + '\\n')\n"
        "    return live['feature_2'].rank(pct=True)\n")


def _warm_sizes() -> dict[str, int]:
    from numerai_autopilot.executor.worker_side import warm_sizes

    return warm_sizes()


def _pid() -> int:
    import os

    return os.getpid()


def _blas_threads() -> int:
    import threadpoolctl

    return max(p["num_threads"] for p in threadpoolctl.threadpool_info()
               if p["user_api"] == "blas")


async def test_the_longest_models_start_first(one_worker: Executor, live: Path,
                                              tmp_path: Path) -> None:
    (tmp_path / "order.py").write_text(
        "import time\n"
        "def predict(live):\n"
        "    time.sleep(0.2)\n"
        "    return live['feature_3'].rank(pct=True)\n")
    # earlier rounds' predict times, as the runtime seeds them from the ledger
    known = {"quick": 0.1, "slow": 30.0, "medium": 5.0, "slowest": 90.0}
    # none of them scales: a solo model would go before the longest (test_slots.py)
    one_worker.predict_times.update({n: Expected(s, wide_thread_s=2 * s, busy=0.5)
                                     for n, s in known.items()})
    names = ["quick", "medium", "new", "slow", "slowest"]
    outs = await asyncio.gather(*(one_worker.predict(_job("order.py:predict", tmp_path, live, n))
                                  for n in names))
    started = sorted(zip((o.queued_s for o in outs), names, strict=True))
    # one worker thread, two tasks in flight at once: the first two go to the scheduler
    # together, the rest wait in line by expected time (a model never seen first of all)
    order = [name for _, name in started]
    assert set(order[:2]) == {"new", "slowest"} and order[2:] == ["slow", "medium", "quick"]
    # what this round took is what the next round goes by
    assert all(0.15 < one_worker.predict_times[n].seconds < 5 for n in names)
