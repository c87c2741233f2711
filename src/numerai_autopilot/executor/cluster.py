"""Starting or joining the Dask cluster, and stopping a worker that must die.

Dask behaviours this module is built on:
- distributed has no per-task timeout and ``cancel()`` leaves a running task running; only
  killing the worker process stops it. SIGKILL of a local process lets its nanny start a
  fresh one at once; ``restart_workers`` is slower but works across machines.
- A task whose worker dies is re-run elsewhere unless ``allowed_failures`` is 0; a poisoned
  task would kill worker after worker. We fail it at once and let the ledger retry.
- With ``worker-saturation`` above 1.0 the scheduler sends a worker more tasks than threads,
  and a queued task is blamed (``KilledWorker``) when its worker dies. 1.0 keeps only
  running tasks on a worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import importlib
import logging
import os
import re
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # not at run time: worker processes import this package without pydantic
    from numerai_autopilot.config import ExecutorConfig

log = logging.getLogger(__name__)
_KILL_WAIT_S = 5.0

CLUSTER_CONFIG: Mapping[str, object] = {
    "distributed.scheduler.allowed-failures": 0,
    "distributed.scheduler.worker-saturation": 1.0,
    # An idle cluster's CPU goes mostly to Dask's own clocks (each process's event-loop
    # tick, each worker's profiler thread and memory monitor); these slow them down. The
    # per-task memory watchdog (worker_side) still samples often while a predictor runs;
    # the monitor is the nannies' backstop. Dask's own test suite uses the first two values.
    "distributed.admin.tick.interval": "500ms",
    "distributed.worker.profile.enabled": False,
    "distributed.worker.memory.monitor-interval": "500ms",
}


def _configure_scheduler(dask_scheduler: Any) -> None:
    """Runs on the scheduler: the same settings for a cluster we did not start."""
    dask_scheduler.allowed_failures = 0
    dask_scheduler.WORKER_SATURATION = 1.0


class ExitCodes(logging.Handler):
    """Collects worker exit codes from the nannies' log records (local cluster only).

    The nannies of a LocalCluster run in this process and log "Worker process 123 exited
    with status 1" when a worker dies; nothing else exposes the code.
    """

    _pattern = re.compile(r"Worker process (\d+) (exited with status (-?\d+)|"
                          r"was killed by signal (\d+)|was killed by unknown signal)")

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.by_pid: dict[int, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        match = self._pattern.search(record.getMessage())
        if match is None:
            return
        pid = int(match.group(1))
        if match.group(3) is not None:
            self.by_pid[pid] = f"exit code {match.group(3)}"
        elif match.group(4) is not None:
            number = int(match.group(4))
            try:
                name = signal.Signals(number).name
            except ValueError:
                name = f"signal {number}"
            self.by_pid[pid] = f"killed by {name}"
        else:
            self.by_pid[pid] = "killed by a signal"


class Cluster:
    """The Dask client, and the LocalCluster when we started one.

    :param config: the ``[executor]`` table: a scheduler to join, or the local cluster's
        workers, threads and memory limit.
    :param local_directory: where a local cluster's workers keep their files (None: Dask's
        default, under the system's temporary folder).
    """

    def __init__(self, config: ExecutorConfig, local_directory: Path | None = None) -> None:
        self.config = config
        self.local_directory = local_directory
        # distributed's Client and LocalCluster are untyped: Any keeps mypy strict honest
        self.client: Any = None
        self.local: Any = None
        self.exit_codes = ExitCodes()

    async def start(self) -> Any:
        """Start the local cluster or join the scheduler; returns the (asynchronous) client.

        Raises what distributed raises when the cluster cannot start or be reached.
        """
        # Importing distributed is slow: in a thread, so the server's event loop (started
        # beside this) binds its port and answers meanwhile.
        await asyncio.to_thread(importlib.import_module, "distributed")
        import dask
        import distributed

        # untyped constructors, used through Any
        local_cluster: Any = distributed.LocalCluster
        client_cls: Any = distributed.Client

        config = self.config
        if config.scheduler is None:
            logging.getLogger("distributed.nanny").addHandler(self.exit_codes)
            with dask.config.set(dict(CLUSTER_CONFIG)):
                self.local = await local_cluster(
                    n_workers=config.workers,
                    threads_per_worker=config.threads_per_worker,
                    processes=True,
                    host="127.0.0.1",
                    # None would still serve the scheduler's HTTP routes on port 8787
                    dashboard_address="127.0.0.1:0",
                    memory_limit=config.memory_limit,
                    local_directory=str(self.local_directory) if self.local_directory else None,
                    asynchronous=True,
                    # for the nannies' worker processes, restarted ones included (a copy:
                    # leaving the `with` restores the global config's nested dicts in place)
                    config=copy.deepcopy(dask.config.config),
                )
                self.client = await client_cls(self.local, asynchronous=True,
                                           set_as_default=False)
        else:
            self.client = await client_cls(config.scheduler, asynchronous=True,
                                           set_as_default=False)
        await self.client.run_on_scheduler(_configure_scheduler)
        from numerai_autopilot.executor.worker_plugin import WarmImports

        await self.client.register_plugin(WarmImports())
        return self.client

    async def close(self) -> None:
        """Close the client, then the local cluster if we started one."""
        client, local = self.client, self.local
        self.client = self.local = None
        try:
            if client is not None:
                await client.close()
            if local is not None:
                await local.close()
        finally:
            logging.getLogger("distributed.nanny").removeHandler(self.exit_codes)

    async def kill_worker(self, address: str, pid: int | None) -> None:
        """Stop a worker's process now; its nanny replaces it."""
        if self.local is not None and pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            return
        # A remote process: ask its event loop (free while the task's thread runs) to
        # SIGKILL the process. The nanny's restart_workers is the fallback: it waits for a
        # graceful close first and, with a hung task, can close the nanny too.
        from numerai_autopilot.executor.worker_side import kill_this_process

        assert self.client is not None
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                self.client.run(kill_this_process, workers=[address], wait=False), 5)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _KILL_WAIT_S
        while loop.time() < deadline:
            info = await self.client.scheduler.identity()
            if address not in info.get("workers", {}):
                return
            await asyncio.sleep(0.05)
        try:
            await self.client.restart_workers([address], timeout=30, raise_for_error=False)
        except Exception as exc:  # noqa: BLE001  best effort: the timeout is reported anyway
            log.warning("could not restart worker %s: %s", address, exc)

    async def exit_reason(self, pid: int | None, wait_s: float = 1.0) -> str | None:
        """The exit code of a dead local worker, when its nanny has logged it."""
        if pid is None or self.local is None:
            return None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while pid not in self.exit_codes.by_pid and loop.time() < deadline:
            await asyncio.sleep(0.02)
        return self.exit_codes.by_pid.pop(pid, None)
