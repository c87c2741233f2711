"""The local Dask cluster (scheduler, nannies, workers) in a process of its own.

    process = await LocalClusterProcess.start(config, local_directory)
    client = await distributed.Client(process.address, asynchronous=True)
    ...
    await process.stop()

The server never hosts the scheduler: a predictor's `get_client().run_on_scheduler(...)` runs
in this process, which holds no configuration. It and its workers get the server's
environment without `NUMERAI_*`, `AUTOPILOT_*` and `PGPASSWORD` variables, so no predictor
can read a key or a secret there. The nannies' reports of dead workers (exit code, signal) are
passed on as scheduler events (`exits.py`). The process ends when its stdin closes (the server
stopped, or died) or on SIGTERM.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from numerai_autopilot.errors import AutopilotError
from numerai_autopilot.executor.exits import EXIT_TOPIC, report_exits
from numerai_autopilot.logs import logging_setup, setup_logging

_START_TIMEOUT_S = 180.0
_STOP_TIMEOUT_S = 15.0
_SECRET_PREFIXES = ("NUMERAI_", "AUTOPILOT_")
# The Cloud SQL ledger's password (a Cloud Run deploy with --cloudsql sets it for libpq).
_SECRET_NAMES = frozenset({"PGPASSWORD"})


def worker_environment(env: Mapping[str, str]) -> dict[str, str]:
    """`env` without the variables that hold our keys and secrets (`NUMERAI_*`,
    `AUTOPILOT_*`, the ledger's `PGPASSWORD`); a predictor's own variables (cloud
    credentials for its model files, thread counts) pass through.

    >>> worker_environment({"PATH": "/bin", "NUMERAI_SECRET_KEY": "k", "PGPASSWORD": "p"})
    {'PATH': '/bin'}
    """
    return {k: v for k, v in env.items()
            if not k.upper().startswith(_SECRET_PREFIXES) and k.upper() not in _SECRET_NAMES}


class LocalClusterProcess:
    """The child process running the local cluster; `address` is its scheduler's."""

    def __init__(self, process: asyncio.subprocess.Process, address: str) -> None:
        self._process = process
        self.address = address

    @classmethod
    async def start(cls, workers: int, threads_per_worker: int, memory_limit: int | str | None,
                    local_directory: Path | None, config: Mapping[str, object],
                    resources: Mapping[str, float] | None = None) -> LocalClusterProcess:
        """Start the cluster with these settings and Dask `config`, each worker offering
        `resources`; raises AutopilotError when it does not come up (its own errors are on
        stderr, which it shares)."""
        spec = {"workers": workers, "threads_per_worker": threads_per_worker,
                "memory_limit": memory_limit, "config": dict(config),
                "resources": dict(resources or {}),
                "local_directory": str(local_directory) if local_directory else None,
                # the workers import predictors by module name as this process would
                "sys_path": sys.path, "logging": logging_setup()}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", f"from {__name__} import main; main()", json.dumps(spec),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            env=worker_environment(os.environ), start_new_session=False)
        assert process.stdout is not None
        try:
            line = await asyncio.wait_for(process.stdout.readline(), _START_TIMEOUT_S)
        except TimeoutError:
            line = b""
        if not line:
            process.kill()
            code = await process.wait()
            raise AutopilotError(f"the local Dask cluster did not start (exit code {code}); "
                                 "its errors are in the log above")
        return cls(process, json.loads(line)["address"])

    @property
    def pid(self) -> int:
        return self._process.pid

    async def stop(self) -> None:
        """Close the cluster (its workers first), or kill it after a grace period."""
        if self._process.returncode is not None:
            return
        assert self._process.stdin is not None
        self._process.stdin.close()
        try:
            await asyncio.wait_for(self._process.wait(), _STOP_TIMEOUT_S)
        except TimeoutError:
            self._process.kill()
            await self._process.wait()


async def _serve(spec: dict[str, Any]) -> None:
    sys.path[:] = spec["sys_path"]  # the nannies' worker processes start with it too
    import dask
    import distributed

    setup_logging(*spec["logging"])  # after distributed's import: its loggers too

    local_cluster: Any = distributed.LocalCluster  # untyped
    with dask.config.set(spec["config"]):
        cluster = await local_cluster(
            n_workers=spec["workers"], threads_per_worker=spec["threads_per_worker"],
            processes=True, host="127.0.0.1",
            # None would still serve the scheduler's HTTP routes on port 8787
            dashboard_address="127.0.0.1:0", memory_limit=spec["memory_limit"],
            local_directory=spec["local_directory"], asynchronous=True,
            resources=spec["resources"] or None,
            # for the nannies' worker processes, restarted ones included
            config=copy.deepcopy(dask.config.config))
    report_exits(lambda event: cluster.scheduler.log_event(EXIT_TOPIC, event))
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(json.dumps({"address": cluster.scheduler_address}), flush=True)
    waiting = asyncio.ensure_future(reader.read())  # EOF: the server is gone
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({waiting, stopped}, return_when=asyncio.FIRST_COMPLETED)
    await cluster.close()


def main() -> None:
    """The child process: `python -c "...; main()" SPEC`, SPEC the cluster's settings (JSON)."""
    # Ctrl-C in a terminal reaches the whole process group: the server stops this process
    # (stdin closed, or SIGTERM) once its runs are safe; without this, and in the workers,
    # which inherit it, each printed a KeyboardInterrupt traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(_serve(json.loads(sys.argv[1])))
