"""How many native threads a predictor may use: the machine's free cores, no more.

Dask's nanny starts workers with OMP_NUM_THREADS, MKL_NUM_THREADS and OPENBLAS_NUM_THREADS at
1, so that many busy workers do not oversubscribe the cores. When fewer predictions run
than there are cores, that leaves cores idle: a lone LightGBM or numpy model would use one
core of several. As a task starts, its worker asks the scheduler how many tasks the workers
of its machine run now (`threads_now`) and applies its share of the cores to the native
libraries loaded in its process, for the predictor's call only (`native_threads`, through
threadpoolctl). A library the predictor first imports inside that call keeps 1 thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit


def machine_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS says)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def threads_for(cores: int, in_flight: int) -> int:
    """Threads for one of `in_flight` predictions sharing `cores`: at least 1.

    >>> threads_for(8, 1), threads_for(8, 3), threads_for(2, 20)
    (8, 2, 1)
    """
    return max(1, cores // max(in_flight, 1))


def threads_now(worker: Any, wait_s: float = 2.0) -> int:
    """This worker's share of its machine's cores: the cores over the tasks that the
    scheduler says the machine's workers run now (this one included); 1 when the scheduler
    does not answer within `wait_s`. Call it from a task's thread, not the worker's loop."""
    host = urlsplit(worker.address).hostname
    try:
        call = worker.scheduler.processing()
        processing = asyncio.run_coroutine_threadsafe(
            call, worker.loop.asyncio_loop).result(timeout=wait_s)
    except Exception:  # noqa: BLE001  (busy or gone: one thread is always safe)
        return 1
    running = sum(len(keys) for address, keys in processing.items()
                  if urlsplit(address).hostname == host)
    return threads_for(machine_cores(), running)


@contextlib.contextmanager
def native_threads(count: int) -> Iterator[None]:
    """Let OpenMP (LightGBM, XGBoost), BLAS (numpy) and MKL use `count` threads inside the
    block, then restore the worker's own limits. A no-op for 1 thread (the worker's
    default) or where threadpoolctl is not installed."""
    if count <= 1:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=count):
        yield
