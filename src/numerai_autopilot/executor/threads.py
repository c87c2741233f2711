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


# The variables a native library reads when it is first loaded (the nanny sets them to 1).
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@contextlib.contextmanager
def native_threads(count: int) -> Iterator[None]:
    """Let OpenMP (LightGBM, XGBoost), BLAS (numpy) and MKL use `count` threads inside the
    block, then put every native library back to the worker's 1 thread. A library the
    predictor first imports inside the block starts with `count` threads too (its thread
    variables say so while the block runs). A no-op for 1 thread (the worker's default) or
    where threadpoolctl is not installed."""
    if count <= 1:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    saved = {name: os.environ.get(name) for name in _THREAD_VARIABLES}
    os.environ.update(dict.fromkeys(_THREAD_VARIABLES, str(count)))
    try:
        with threadpool_limits(limits=count):
            yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        threadpool_limits(limits=1)  # libraries loaded inside the block included
