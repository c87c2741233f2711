"""Builds the parts of a running service from the configuration, and tears them down.

The composition root: every part gets what it uses from here, and the parts several others
share are made once (the ledger, the Numerai client, the current-round cache `rounds`, the
model ids `model_ids`). The webhook path needs only the ledger, so `open()` makes that
first; the Dask cluster comes up in the background, meanwhile the current rounds Numerai
already has submissions for are recorded (`runs/recovery.py`), and the dispatcher starts
claiming runs once both are done, so a server answers webhooks before its executor is up.
While runs are unfinished, `keep_busy` holds a request to the server itself open (for Cloud
Run's request-based CPU); `drain` (at SIGTERM) and `close` leave every run resumable.

    async with Runtime(config) as runtime:   # ledger, client, data cache, executor, dispatcher
        ...
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from numerai_autopilot.config import AppConfig
from numerai_autopilot.errors import ConfigError
from numerai_autopilot.executor import Executor, Expected
from numerai_autopilot.executor.environments import EnvWorkerSpec
from numerai_autopilot.executor.predictors import PredictorSpec, parse_predictor
from numerai_autopilot.ledger import Ledger, RunState
from numerai_autopilot.numerai import NumeraiClient, RetryPolicy
from numerai_autopilot.observe import Monitor
from numerai_autopilot.runs import (
    BatchRecorder,
    CurrentRounds,
    Dispatcher,
    KeepBusy,
    ModelIds,
    Pipeline,
    Progress,
    RoundData,
    RoundWatcher,
    Services,
    fallback_key,
    is_benchmark,
    keep_busy_token,
    recover_submissions,
    warm_up_round_data,
)

log = logging.getLogger(__name__)
RETRY_CAP_S = 6 * 3600.0
# At start, how long Numerai may take to say which current rounds it has submissions for
# (the dispatcher waits for it).
RECOVERY_WAIT_S = 60.0
# At close, the time the best-effort steps (alerts in flight, the Dask cluster) may take: a
# SIGTERM leaves 10 s in all, and the steps that keep runs resumable come first.
_BEST_EFFORT_S = 6.0


def lease_owner() -> str:
    """A name for this process in the ledger's leases: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def load_predictors(config: AppConfig) -> dict[str, PredictorSpec]:
    """Parse every model's predictor reference (a blend has none: it has no entry); one
    error lists every bad model."""
    specs: dict[str, PredictorSpec] = {}
    problems: list[str] = []
    base, pickle_dirs = config.base_dir, config.executor.pickle_dirs
    for name, model in config.models.items():
        try:
            if model.predictor is not None:
                specs[name] = parse_predictor(model.predictor, base, pickle_dirs)
        except ConfigError as exc:
            problems.append(f"{config.source}: models.{name}.predictor: {exc}")
        if model.fallback is not None and not is_benchmark(model.fallback):
            try:
                specs[fallback_key(name)] = parse_predictor(model.fallback, base, pickle_dirs)
            except ConfigError as exc:
                problems.append(f"{config.source}: models.{name}.fallback: {exc}")
    if problems:
        raise ConfigError("\n".join(problems))
    return specs


def environment_workers(config: AppConfig) -> dict[str, EnvWorkerSpec]:
    """How the executor starts each configured environment's workers: from its own
    interpreter (`autopilot envs build`), with the `[executor]` memory limit per worker."""
    from numerai_autopilot import envs

    def problem(name: str) -> str | None:
        return envs.check(config, name).problem

    def stamp(name: str) -> object:
        record = envs.env_dir(config, name) / envs.RECORD_FILE
        return record.stat().st_mtime_ns if record.exists() else None

    return {name: EnvWorkerSpec(
        name=name, python=envs.env_python(config, name), workers=env.workers, threads=1,
        memory_limit=config.executor.memory_limit, idle_stop_s=env.idle_stop,
        problem=functools.partial(problem, name), stamp=functools.partial(stamp, name))
        for name, env in config.environments.items()}


def last_predict_times(ledger: Ledger, models: int) -> dict[str, Expected]:
    """What each model's recent submitted runs say (`Expected.of_run`, oldest first), by
    model name: from their predict times (`compute_s`), CPU times (`cpu_s`), thread
    counts (`threads`) and whether another model loaded on their cores (`cores_shared`).
    The executor starts the longest first, and runs those that scale solo."""
    measured: dict[str, list[tuple[float, float | None, int, bool]]] = {}
    for run in ledger.runs(limit=20 * models + 50, states=[RunState.SUBMITTED]):  # newest first
        compute_s, cpu_s, threads = (run.detail.get(k) for k in ("compute_s", "cpu_s", "threads"))
        if isinstance(compute_s, int | float):
            measured.setdefault(run.model_name, []).append(
                (float(compute_s), float(cpu_s) if isinstance(cpu_s, int | float) else None,
                 threads if isinstance(threads, int) else 1,
                 run.detail.get("cores_shared") is True))
    known: dict[str, Expected] = {}
    for name, times in measured.items():
        for seconds, cpu_s, threads, shared in reversed(times):
            known[name] = Expected.of_run(seconds, cpu_s, threads, known.get(name), shared)
    return known


class Runtime:
    """The live parts of one server (or one `autopilot run`) process.

    `owner` names the process in the ledger's leases; `dry_run_dir` makes runs write their
    validated CSVs there instead of uploading; `progress` reports round data downloads;
    `dispatch=False` (for `autopilot run`, which drives its one run itself) starts no
    dispatcher, monitor, watcher or recovery; `keep_busy_url` is where keep-busy requests
    go (`runs.keepbusy.keep_busy_url`; None sends none). Raises ConfigError when a predictor
    reference is bad, or for `keep_busy_url` without `server.secret`.
    """

    def __init__(
        self,
        config: AppConfig,
        *,
        owner: str | None = None,
        dry_run_dir: Path | None = None,
        progress: Progress | None = None,
        dispatch: bool = True,
        keep_busy_url: str | None = None,
    ) -> None:
        self.config = config
        self.owner = owner or lease_owner()
        self._dispatch = dispatch
        self.ledger = Ledger.from_url(config.ledger.url)
        self.http = httpx.AsyncClient(timeout=config.numerai.timeout)
        secret = config.server.secret
        if keep_busy_url is not None and secret is None:
            raise ConfigError(f"{config.source}: server.secret: required to keep busy "
                              "(it signs the keep-busy requests); set it or keep_busy = 'off'")
        self.keep_busy = KeepBusy(
            self.ledger, self.owner, self.http, url=keep_busy_url,
            token=keep_busy_token(secret.get_secret_value()) if secret is not None else None)
        self.draining = False
        # Runs pass the round's close as their deadline; the policy's cap only has to be longer.
        self.client = NumeraiClient.from_settings(
            self.http, config.numerai, RetryPolicy(deadline_s=RETRY_CAP_S))
        self.executor = Executor(
            config.executor,
            local_directory=config.resolve_path(config.data.cache_dir) / "dask",
            environments=environment_workers(config),
        )
        self.model_ids = ModelIds(config.models, config.source)
        self.rounds = CurrentRounds(self.client)
        self.services = Services(
            config=config,
            ledger=self.ledger,
            client=self.client,
            rounddata=RoundData(
                self.client,
                config.resolve_path(config.data.cache_dir),
                keep_rounds=config.data.keep_rounds,
                progress=progress,
            ),
            rounds=self.rounds,
            executor=self.executor,
            predictors=load_predictors(config),
        )
        # Alerts, stage metrics and round summaries; hooked in after the ledger commits.
        self.monitor = Monitor(config, self.ledger, self.rounds, self.services.rounddata)
        self.metrics = self.monitor.metrics
        self.metrics.watch_keep_busy(lambda: self.keep_busy.holding)
        self.services.notify = self.monitor.notify
        self.services.on_change = self.monitor.changed
        self.pipeline = Pipeline(self.services, self.owner, dry_run_dir=dry_run_dir)
        # The webhook's own thread for recording runs: a round's pipeline work (ledger
        # writes, validation) must not make webhooks wait for a free thread.
        self.record_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="record")
        self.recorder = BatchRecorder(self.ledger, self.record_pool)
        self.dispatcher = Dispatcher(
            self.ledger, self.pipeline, self.owner,
            max_concurrent=config.server.max_concurrent_runs,
            lease_s=config.server.run_lease,
            quiet=self.recorder.quiet,
            on_work=self.keep_busy.poke,
        )
        self.watcher = RoundWatcher(
            self.ledger, self.rounds, self.model_ids, self.dispatcher.wake,
            after=config.server.watch_after, interval=config.server.watch_interval,
        )
        self.ready = asyncio.Event()
        self._background: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Make the ledger usable now; start the executor and dispatcher in the background."""
        await asyncio.to_thread(self.ledger.migrate)
        if self.keep_busy.url is not None:
            log.info("keep-busy: while runs are unfinished, a request to %s is held open",
                     self.keep_busy.url)
        self._background = asyncio.create_task(self._start_background(), name="runtime-start")

    async def _start_background(self) -> None:
        # a round's first imports load in a thread now, not on the loop between its webhooks
        imports = asyncio.create_task(asyncio.to_thread(warm_up_round_data))
        executor = asyncio.create_task(self.executor.start(), name="executor-start")
        try:
            try:
                await self.model_ids.resolve(self.client, deadline=time.time() + 60)
            except Exception as exc:  # noqa: BLE001  (Numerai unreachable: retried on a webhook)
                log.warning("could not resolve model ids by name yet: %s", exc)
            if self._dispatch:
                self.keep_busy.poke(check=True)  # runs an earlier process left unfinished
                self.executor.predict_times.update(
                    await asyncio.to_thread(last_predict_times, self.ledger, len(self.config.models)))
                await self._recover()  # before anything is claimed
            await executor
        finally:
            if not executor.done():  # cancelled (closed while starting): stop the cluster too
                executor.cancel()
                await asyncio.gather(executor, return_exceptions=True)
        await imports
        if self._dispatch and not self.draining:
            self.dispatcher.start()
            self.monitor.start()
            self.watcher.start()
        self.ready.set()
        log.info("executor ready; dispatching runs as %s", self.owner)

    async def _recover(self) -> None:
        """Record the current rounds Numerai already has submissions for and the ledger has
        no submitted run of (`runs.recovery`): a lost ledger neither resubmits nor skips a
        model."""
        try:
            recovered = await recover_submissions(
                self.ledger, self.client, self.rounds, self.model_ids, wait_s=RECOVERY_WAIT_S)
        except Exception:  # the server runs on without it; each upload checks the ledger
            log.exception("recovering Numerai's submissions of the current rounds failed")
            return
        if recovered:
            log.warning("recorded %d submission(s) Numerai had and the ledger did not: %s",
                        len(recovered), ", ".join(f"{r.model_name} round {r.round_number}"
                                                  for r in recovered))

    async def wait_ready(self) -> None:
        """Wait until the executor is up (raises what starting it raised)."""
        assert self._background is not None, "call open() first"
        await asyncio.shield(self._background)

    def drain(self) -> None:
        """Begin stopping, at once: claim no more runs, send no more keep-busy requests and
        answer the held ones (the HTTP server waits for open requests before it shuts the
        app down). Synchronous and idempotent, for SIGTERM's own moment (Cloud Run sends it
        10 s before SIGKILL); `close` does the rest."""
        if self.draining:
            return
        self.draining = True
        log.info("stopping: claiming no more runs")
        self.dispatcher.stop_claiming()
        self.keep_busy.stop()

    async def close(self) -> None:
        """Stop what `open` started, in this order (after SIGTERM, all of it fits Cloud
        Run's 10 s; the steps that keep runs resumable come first):

        1. `drain`; the start-up (recovery included) is cancelled; the watcher and the
           keep-busy requests stop.
        2. The runs in flight are cancelled where they are (each stays in its state), their
           state changes already made are committed, and their leases released, so the
           next process resumes them at once (`Dispatcher.stop`).
        3. The webhooks' runs still being written are committed (`BatchRecorder.flush`).
        4. Best effort, within `_BEST_EFFORT_S`: alerts in flight, the Dask cluster.
        5. Round lookups and the HTTP client stop; the ledger closes last.
        """
        self.drain()
        if self._background is not None:  # what starting raised was `wait_ready`'s to say
            self._background.cancel()
            await asyncio.gather(self._background, return_exceptions=True)
        await self.watcher.stop()
        await self.keep_busy.close()
        await self.dispatcher.stop()
        await self.recorder.flush()
        log.info("stopped: no run in flight, the ledger's writes committed")
        loop = asyncio.get_running_loop()
        until = loop.time() + _BEST_EFFORT_S
        await self.monitor.close(timeout=_BEST_EFFORT_S / 3)
        try:
            await asyncio.wait_for(self.executor.close(), max(until - loop.time(), 0.1))
        except TimeoutError:
            log.warning("the Dask cluster did not stop within %.0f s; its workers end with "
                        "this process", _BEST_EFFORT_S)
        await self.rounds.close()
        await self.http.aclose()
        self.record_pool.shutdown(wait=True)
        self.ledger.close()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
