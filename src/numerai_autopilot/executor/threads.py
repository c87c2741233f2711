"""How many native threads a predictor may use: the machine's free cores, no more.

Dask's nanny starts workers with OMP_NUM_THREADS, MKL_NUM_THREADS and OPENBLAS_NUM_THREADS at
1, so that many busy workers do not oversubscribe the cores. When fewer predictions are in
flight than there are cores, that leaves cores idle: a lone LightGBM or numpy model would
use one core of several. The executor gives each task `threads_for(cores, in_flight)`
threads, and the worker applies it to the native libraries loaded in its process for the
predictor's call only (`native_threads`, through threadpoolctl).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


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
