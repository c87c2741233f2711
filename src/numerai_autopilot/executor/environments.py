"""The configured environments' Dask workers: started from each environment's interpreter
when one of its models first needs them, joined to the service's scheduler, and stopped
after `idle_stop` without a task.

    pool = EnvironmentWorkers({"legacy": EnvWorkerSpec(...)}, local_directory)
    await pool.ready("legacy", scheduler_address)   # starts them; EnvironmentNotReady
    with pool.using("legacy"):                       # a task of it is in flight
        ...
    await pool.close()

Isolation rests on Dask resources (`env_worker.environment_resource`): an environment's
workers offer its resource and its models' tasks ask for it; when any environment is
configured, the service's own workers offer `DEFAULT_RESOURCE` and its own models' tasks ask
for that, so no task runs under another environment's libraries. The workers' output is
passed on through this process's log, a line at a time, so `serve --log-format json` stays
JSON and a failed start can quote its last lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import sysconfig
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from numerai_autopilot.executor.env_worker import environment_resource
from numerai_autopilot.executor.errors import PredictorLoadError
from numerai_autopilot.executor.local_cluster import worker_environment
from numerai_autopilot.logs import logging_setup

log = logging.getLogger(__name__)
_START_TIMEOUT_S = 180.0
_STOP_TIMEOUT_S = 15.0
_TAIL_LINES = 20


class EnvironmentNotReady(PredictorLoadError):
    """An environment's workers cannot run: it is not built, stale, failed to build, or its
    workers did not start. The message says which, and the command that fixes it."""


@dataclass(frozen=True)
class EnvWorkerSpec:
    """How to start one environment's workers.

    `problem` says what keeps the environment from running (not built, stale, a failed
    build: a sentence with the fix), or None when it is ready; `stamp` changes when it is
    built again, so running workers are replaced by ones of the new build."""

    name: str
    python: Path
    workers: int
    threads: int
    memory_limit: int | None
    idle_stop_s: float
    problem: Callable[[], str | None]
    stamp: Callable[[], object]


@dataclass
class _Running:
    process: asyncio.subprocess.Process
    stamp: object
    output: asyncio.Task[None]
    tail: deque[str]
    in_flight: int = 0
    last_used: float = 0.0


class EnvironmentWorkers:
    """The environments' worker processes (one process of nannies per environment)."""

    def __init__(self, specs: Mapping[str, EnvWorkerSpec], local_directory: Path | None,
                 config: Mapping[str, object]) -> None:
        self.specs = dict(specs)
        self._local_directory = local_directory
        self._config = dict(config)
        self._running: dict[str, _Running] = {}
        self._locks = {name: asyncio.Lock() for name in self.specs}
        self._reaper: asyncio.Task[None] | None = None

    def __bool__(self) -> bool:
        return bool(self.specs)

    def running(self) -> list[str]:
        """The environments whose workers are up now."""
        return [name for name, r in self._running.items() if r.process.returncode is None]

    async def ready(self, name: str, scheduler: str) -> None:
        """Make sure environment `name`'s workers are up (started, or restarted after a new
        build or a crash), joined to `scheduler`.

        :raises EnvironmentNotReady: the environment is unknown, not built, stale, failed
            to build, or its workers did not start (their last lines quoted).
        """
        spec = self.specs.get(name)
        if spec is None:
            raise EnvironmentNotReady(f"environment {name!r} is not configured; add an "
                                      f"[environments.{name}] table")
        async with self._locks[name]:
            problem = await asyncio.to_thread(spec.problem)
            if problem is not None:
                raise EnvironmentNotReady(problem)
            stamp = await asyncio.to_thread(spec.stamp)
            running = self._running.get(name)
            if running is not None and running.process.returncode is None \
                    and running.stamp == stamp:
                running.last_used = asyncio.get_running_loop().time()
                return
            if running is not None:
                await self._stop(name)
            self._running[name] = await self._start(spec, scheduler, stamp)
        if self._reaper is None and any(s.idle_stop_s > 0 for s in self.specs.values()):
            self._reaper = asyncio.ensure_future(self._reap())

    @contextlib.contextmanager
    def using(self, name: str | None) -> Iterator[None]:
        """Mark a task of environment `name` in flight: its workers are not stopped meanwhile
        (None, the service's own environment: nothing to mark)."""
        running = self._running.get(name) if name is not None else None
        if running is not None:
            running.in_flight += 1
        try:
            yield
        finally:
            if running is not None:
                running.in_flight -= 1
                running.last_used = asyncio.get_running_loop().time()

    async def close(self) -> None:
        """Stop every environment's workers."""
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        for name in list(self._running):
            await self._stop(name)

    async def _start(self, spec: EnvWorkerSpec, scheduler: str, stamp: object) -> _Running:
        directory = (self._local_directory / f"env-{spec.name}") if self._local_directory \
            else None
        child = {"scheduler": scheduler, "name": spec.name, "workers": spec.workers,
                 "threads": spec.threads, "memory_limit": spec.memory_limit,
                 "resource": environment_resource(spec.name), "config": self._config,
                 "local_directory": str(directory) if directory else None,
                 "sys_path": _project_paths(), "logging": logging_setup()}
        log.info("starting environment %r: %d worker(s) from %s", spec.name, spec.workers,
                 spec.python)
        try:
            process = await asyncio.create_subprocess_exec(
                str(spec.python), "-c",
                "from numerai_autopilot.executor.env_worker import main; main()",
                json.dumps(child), stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                env=worker_environment(os.environ))
        except OSError as exc:
            raise EnvironmentNotReady(
                f"environment {spec.name!r}: cannot start {spec.python} ({exc}); run "
                f"`autopilot envs build {spec.name}`") from None
        assert process.stdout is not None and process.stderr is not None
        tail: deque[str] = deque(maxlen=_TAIL_LINES)
        output = asyncio.ensure_future(_relay(spec.name, process.stderr, tail))
        try:
            line = await asyncio.wait_for(process.stdout.readline(), _START_TIMEOUT_S)
        except TimeoutError:
            line = b""
        if not line:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            code = await process.wait()
            await asyncio.wait({output}, timeout=2)
            said = "\n".join(tail) or "(it printed nothing)"
            raise EnvironmentNotReady(
                f"environment {spec.name!r}: its workers did not start (exit code {code}); "
                f"their last lines:\n{said}\nRebuild it with `autopilot envs build "
                f"{spec.name} --force` if its packages are broken")
        log.info("environment %r: %d worker(s) joined the scheduler", spec.name, spec.workers)
        return _Running(process, stamp, output, tail,
                        last_used=asyncio.get_running_loop().time())

    async def _stop(self, name: str) -> None:
        running = self._running.pop(name, None)
        if running is None:
            return
        process = running.process
        if process.returncode is None:
            assert process.stdin is not None
            process.stdin.close()
            try:
                await asyncio.wait_for(process.wait(), _STOP_TIMEOUT_S)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        await asyncio.wait({running.output}, timeout=2)
        running.output.cancel()

    async def _reap(self) -> None:
        """Stop the workers of environments idle for their `idle_stop` (0: never)."""
        loop = asyncio.get_running_loop()
        every = max(min(s.idle_stop_s for s in self.specs.values() if s.idle_stop_s > 0) / 4,
                    0.1)
        while True:
            await asyncio.sleep(min(every, 30.0))
            for name, running in list(self._running.items()):
                idle_stop = self.specs[name].idle_stop_s
                if idle_stop > 0 and running.in_flight == 0 \
                        and loop.time() - running.last_used >= idle_stop:
                    async with self._locks[name]:
                        if running.in_flight == 0 and self._running.get(name) is running:
                            log.info("environment %r: idle for %g s, its workers stop",
                                     name, idle_stop)
                            await self._stop(name)


async def _relay(name: str, stream: asyncio.StreamReader, tail: deque[str]) -> None:
    """Pass a worker process's output on as this process's log lines (JSON ones as they
    are: the workers log as the server does), keeping the last few for errors."""
    while line := await stream.readline():
        text = line.decode(errors="replace").rstrip()
        if not text:
            continue
        tail.append(text)
        if text.startswith("{"):
            print(text, file=sys.stderr, flush=True)
        else:
            log.info("environment %r: %s", name, text)


def _project_paths() -> list[str]:
    """This process's `sys.path` folders that are not an installation's (the standard
    library's or site-packages): where predictor modules are found; the environment's
    workers put them first, as the local cluster's workers have them."""
    installed = {Path(p).resolve() for key in ("stdlib", "platstdlib", "purelib", "platlib")
                 if (p := sysconfig.get_paths().get(key))}
    installed |= {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve()}
    paths: list[str] = []
    for entry in sys.path:
        path = Path(entry or os.getcwd()).resolve()
        if not any(path == base or base in path.parents for base in installed) \
                and str(path) not in paths:
            paths.append(str(path))
    return paths


def resources_for(environment: str | None, isolated: bool) -> dict[str, Any] | None:
    """What a task of `environment` asks the scheduler for; None when no environment is
    configured (`isolated` false): then any worker may run it."""
    return {environment_resource(environment): 1} if isolated else None
