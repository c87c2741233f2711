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
import importlib
import logging
import os
import signal
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from numerai_autopilot.executor.exits import EXIT_TOPIC
from numerai_autopilot.executor.local_cluster import LocalClusterProcess
from numerai_autopilot.logs import adopt_dask_loggers, logging_setup

if TYPE_CHECKING:  # not at run time: worker processes import this package without pydantic
    from numerai_autopilot.config import ExecutorConfig

log = logging.getLogger(__name__)
_KILL_WAIT_S = 5.0
_REASON_WAIT_S = 1.5  # how long a dead worker's recorded reason may take to arrive

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


class Cluster:
    """The Dask client, and the local cluster's process when we started one (`local_cluster`).

    :param config: the ``[executor]`` table: a scheduler to join, or the local cluster's
        workers, threads and memory limit.
    :param local_directory: where a local cluster's workers keep their files (None: Dask's
        default, under the system's temporary folder).
    """

    def __init__(self, config: ExecutorConfig, local_directory: Path | None = None,
                 resources: Mapping[str, float] | None = None) -> None:
        self.config = config
        self.local_directory = local_directory
        self.resources = resources  # what each local worker offers (environments)
        # distributed's Client is untyped: Any keeps mypy strict honest
        self.client: Any = None
        self.address: str | None = None  # the scheduler's, once started
        self.local: LocalClusterProcess | None = None
        # dead local workers' exit codes or signals, by pid, as their nannies reported them
        self.exit_codes: dict[int, str] = {}

    async def start(self) -> Any:
        """Start the local cluster or join the scheduler; returns the (asynchronous) client.

        Raises what distributed raises when the cluster cannot start or be reached.
        """
        # Importing distributed is slow: in a thread, so the server's event loop (started
        # beside this) binds its port and answers meanwhile.
        await asyncio.to_thread(importlib.import_module, "distributed")
        import dask
        import distributed

        adopt_dask_loggers()  # distributed's import gave its loggers handlers of their own

        client_cls: Any = distributed.Client  # untyped

        config = self.config
        if config.scheduler is None:
            self.local = await LocalClusterProcess.start(
                config.workers, config.threads_per_worker, config.memory_limit,
                self.local_directory, CLUSTER_CONFIG, self.resources)
            address = self.local.address
        else:
            address = config.scheduler
        self.address = address
        with dask.config.set(dict(CLUSTER_CONFIG)):
            self.client = await client_cls(address, asynchronous=True, set_as_default=False)
        if self.local is not None:
            self.client.subscribe_topic(EXIT_TOPIC, self._on_exit)
        await self.client.run_on_scheduler(_configure_scheduler)
        from numerai_autopilot.executor.worker_plugin import LogSetup, WarmImports

        await self.client.register_plugin(LogSetup(*logging_setup()))
        await self.client.register_plugin(WarmImports())
        return self.client

    async def close(self) -> None:
        """Close the client, then the local cluster if we started one."""
        client, local = self.client, self.local
        self.client = self.local = None
        try:
            if client is not None:
                await client.close()
        finally:
            if local is not None:
                await local.stop()

    def _on_exit(self, event: tuple[float, dict[str, Any]]) -> None:
        self.exit_codes[int(event[1]["pid"])] = str(event[1]["reason"])

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

    async def death_message(self, name: str, pid: int,
                            recorded: Callable[[], str | None]) -> str:
        """Why model `name`'s worker process `pid` died while it predicted, for its run's
        error: the reason its task recorded (`recorded()`: a memory limit, by the time the
        event arrives), else how the nanny saw the process end (a crash)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _REASON_WAIT_S
        while recorded() is None and loop.time() < deadline:
            if self.exit_codes.get(pid):
                break  # the nanny saw the exit and no reason was recorded: a crash
            await asyncio.sleep(0.02)
        code = await self.exit_reason(pid, wait_s=0.5)
        reason = recorded()
        if reason is not None:
            return f"model {name!r}: worker died: {reason}; lower the model's memory use " \
                   f"or raise its memory limit"
        detail = f" ({code})" if code else ""
        return (f"model {name!r}: worker died{detail} while predicting: the process ended "
                f"without a Python error (os._exit, a segfault in native code, or the "
                f"nanny's or system's memory limit)")

    async def exit_reason(self, pid: int | None, wait_s: float = 1.0) -> str | None:
        """The exit code of a dead local worker, when its nanny has logged it."""
        if pid is None or self.local is None:
            return None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while pid not in self.exit_codes and loop.time() < deadline:
            await asyncio.sleep(0.02)
        return self.exit_codes.pop(pid, None)
