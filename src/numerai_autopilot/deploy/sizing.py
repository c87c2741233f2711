"""Does the config's local Dask cluster fit in the Cloud Run instance's memory?

Each local worker may grow to `executor.memory_limit` before it is stopped, and the server
itself (FastAPI, the ledger, Dask's scheduler and nannies) takes about 0.5 GiB; an instance
whose memory is smaller is killed by Cloud Run mid-round instead of failing one run cleanly.

    check_memory_fits(config.executor, "4Gi", source="autopilot.toml")   # ConfigError if not
"""

from __future__ import annotations

import math

from numerai_autopilot.config import ExecutorConfig
from numerai_autopilot.config.units import format_size, parse_size
from numerai_autopilot.errors import ConfigError

SERVER_MEMORY = parse_size("0.5GiB")
_GIB = 1024**3
_STEP = 256 * 1024**2  # suggestions in quarters of a GiB


def check_memory_fits(executor: ExecutorConfig, memory: str, *, source: str,
                      environment_workers: int = 0) -> None:
    """Refuse `executor` when its workers, the `environment_workers` of `[environments]`
    (they may all run at once) and the server do not fit in `memory` (Cloud Run's
    `--memory`, e.g. `4Gi`); an external scheduler's workers run elsewhere and are not
    counted.

    :raises ConfigError: naming both figures and the two fixes (a smaller
        `executor.memory_limit`, fewer workers, or a larger `--memory`).
    """
    if executor.scheduler is not None:
        return
    try:
        instance = parse_size(memory)
    except ValueError:
        raise ConfigError(f"--memory {memory!r} is not a size; write e.g. 4Gi or 8Gi") from None
    workers = executor.workers + environment_workers
    needed = workers * executor.memory_limit + SERVER_MEMORY
    if needed <= instance:
        return
    per_worker = (instance - SERVER_MEMORY) // workers // _STEP * _STEP
    envs = f" ({environment_workers} of them environments')" if environment_workers else ""
    smaller = (f'set executor.memory_limit = "{format_size(per_worker).replace(" ", "")}"'
               if per_worker >= _STEP else "use fewer executor.workers")
    raise ConfigError(
        f"{source}: executor: {workers} workers{envs} x "
        f"{format_size(executor.memory_limit)} + {format_size(SERVER_MEMORY)} for the server = "
        f"{format_size(needed)}, more than the instance's --memory {memory} "
        f"({format_size(instance)}); {smaller}, or deploy with "
        f"--memory {math.ceil(needed / _GIB)}Gi"
    )
