"""Run predictors on Dask workers, one run at a time or many at once.

    async with Executor(config.executor, local_directory=cache_dir / "dask") as ex:
        out = await ex.predict(PredictJob("run-1", "alpha", spec, live_path=arrow_path))

Failure detection (each fails only its own run):
- timeout: the worker announces when the task starts; ``timeout_s`` later the executor
  kills that worker's process (its nanny replaces it) -> PredictorTimeout.
- memory: a watchdog thread in the task records the reason and ends the process
  -> WorkerDied("... worker died: memory limit 4 GiB ...").
- crash (os._exit, segfault, the nanny's own memory kill): the task errs with KilledWorker
  (never re-run: allowed-failures 0) -> WorkerDied with the exit code when known.
- cancelled while it may run (its run stopped): its worker's process is killed too, since
  Dask cannot stop a thread (``abandon.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

from numerai_autopilot.errors import PredictorError, ValidationError
from numerai_autopilot.executor import worker_side
from numerai_autopilot.executor.abandon import Abandoned, Start
from numerai_autopilot.executor.ahead import AheadLoads, LoadAhead
from numerai_autopilot.executor.cluster import CLUSTER_CONFIG, Cluster
from numerai_autopilot.executor.env_worker import DEFAULT_RESOURCE
from numerai_autopilot.executor.environments import EnvironmentWorkers, EnvWorkerSpec, resources_for
from numerai_autopilot.executor.errors import PredictorTimeout, WorkerDied
from numerai_autopilot.executor.gate import DataGate
from numerai_autopilot.executor.jobs import (
    Failed,
    PredictJob,
    PredictorInfo,
    PredictOutcome,
    TaskRequest,
    TaskResult,
)
from numerai_autopilot.executor.predictors import PredictorSpec
from numerai_autopilot.executor.slots import Expected, Slots
from numerai_autopilot.executor.threads import machine_cores
from numerai_autopilot.executor.transfer import RoundFileTransfer

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    # not at run time: worker processes import this package without pydantic
    from numerai_autopilot.config import ExecutorConfig

T = TypeVar("T")
log = logging.getLogger(__name__)
_START_ATTEMPTS = 3
_IN_FLIGHT_PER_THREAD = 2  # see Executor._capacity


class Executor:
    """Runs predictors on a Dask cluster; never in the calling process.

    :param config: the ``[executor]`` table: a scheduler to join, or the size of the local
        cluster to start; and how round files reach the workers.
    :param local_directory: where a local cluster's workers keep their files (None: Dask's
        default, under the system's temporary folder).
    """

    def __init__(self, config: ExecutorConfig, *, local_directory: Path | None = None,
                 environments: Mapping[str, EnvWorkerSpec] | None = None) -> None:
        self.config = config
        self._envs = EnvironmentWorkers(environments or {}, local_directory, CLUSTER_CONFIG)
        # with environments, the local workers offer the service's own (a unit per thread)
        own = {DEFAULT_RESOURCE: config.threads_per_worker} if self._envs else None
        self._cluster = Cluster(config, local_directory, resources=own)
        self._client: Any = None  # distributed.Client (untyped)
        self._started: dict[str, asyncio.Future[Start]] = {}
        self._reasons: dict[str, str] = {}
        self._abandoned = Abandoned(self._cluster.kill_worker)
        self._files = RoundFileTransfer(config, lambda: self.client)
        self._slots = Slots(self._cores, self._capacity, one_machine=config.scheduler is None)
        # What each model's earlier runs say (seeded from the ledger by the runtime): the
        # longest go first, so the slowest does not start last; those that scale run solo.
        self.predict_times: dict[str, Expected] = {}
        self._aheads = AheadLoads(lambda: int(self.client.scheduler_info().get(
            "total_threads", 0) or 0) - len(self._started))

    async def start(self) -> None:
        """Start or join the cluster (once); raises what distributed raises if it cannot."""
        if self._client is not None:
            return
        try:
            self._client = await self._cluster.start()
        except BaseException:
            await self._cluster.close()
            raise
        self._client.subscribe_topic(worker_side.TOPIC, self._on_event)
        if self._envs and self.config.scheduler is not None:
            workers = (await self._client.scheduler.identity()).get("workers", {})
            if not any(DEFAULT_RESOURCE in (w.get("resources") or {}) for w in workers.values()):
                log.warning("environments are configured, so the service's own models run "
                            "only on workers offering the resource %s; start them with "
                            "`dask worker %s --resources %s=THREADS`", DEFAULT_RESOURCE,
                            self.config.scheduler, DEFAULT_RESOURCE)

    async def close(self) -> None:
        """Stop using the cluster, and stop the local one; a no-op when not started."""
        if self._client is None:
            return
        self._files.close()
        await self._abandoned.close()
        await self._envs.close()
        with contextlib.suppress(Exception):
            self._client.unsubscribe_topic(worker_side.TOPIC)
        self._client = None
        await self._cluster.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    @property
    def client(self) -> Any:
        """The distributed Client; RuntimeError before ``start()``."""
        if self._client is None:
            raise RuntimeError("Executor is not started; use 'async with Executor(...)'")
        return self._client

    async def predict(self, job: PredictJob, ready: Awaitable[object] | None = None
                      ) -> PredictOutcome:
        """Run one model's predictor on a worker.

        Returns the predictions, or the submission CSV when ``job.validate_for`` is set.
        Raises a PredictorError subclass (``executor.errors`` draws the tree) for anything
        the predictor or its worker did, and ValidationError when the CSV fails its checks.

        `ready`: the job's round files are still being fetched. Where workers open them
        by path, the task may start now, load the predictor and read the files once
        `ready` is done, failed or not (the wait is not timed; a failed fetch fails the
        task); with scattered files, `ready` is awaited first.
        """
        if ready is not None and self.config.round_file_transfer != "shared":
            await asyncio.shield(ready)  # scattered: the bytes are sent once they are there
            ready = None
        asked_at = [time.time()]  # then when the data came, for a task that did not load early
        if ready is not None:
            ready = asyncio.ensure_future(ready)
            ready.add_done_callback(lambda _: asked_at.append(max(asked_at[0], time.time())))
        spec = job.predictor.refreshed()
        if job.environment is not None:
            await self._envs.ready(job.environment, self._scheduler())
        live_token = self._files.token(job.live_path)
        bench_token = self._files.token(job.benchmark_path) if job.benchmark_path else ""

        async def round_files() -> tuple[Any, ...]:
            # fetched per attempt: scattered bytes lost with their workers are sent again
            try:
                live = await self._files.get(job.live_path, live_token)
                bench = (await self._files.get(job.benchmark_path, bench_token)
                         if job.benchmark_path else None)
            except PredictorError as exc:
                raise PredictorError(f"model {job.model_name!r}: {exc}") from exc
            return live, bench

        request = TaskRequest.of_job(job, spec, live_token, bench_token, self.config.warm_budget)
        ahead = LoadAhead(lambda: self._load_ahead(request, job.timeout_s, job.run_id))
        with self._envs.using(job.environment):
            result: TaskResult = await self._run(
                worker_side.run_prediction, request, round_files, job.timeout_s,
                f"predict-{job.run_id}", expected=self.predict_times.get(job.model_name),
                ready=ready, ahead=ahead)
        waited_from = asked_at[0] if result.data_wait_s is not None else asked_at[-1]
        self.predict_times[job.model_name] = Expected.of_run(
            result.compute_s, result.cpu_s, result.threads, self.predict_times.get(job.model_name),
            shared=ahead.cores_shared)
        loaded = ahead.info if ahead.info is not None and not result.cold else None
        return PredictOutcome(predictions=result.predictions, compute_s=result.compute_s,
                              cpu_s=result.cpu_s, threads=result.threads, worker=result.worker,
                              load_s=loaded.load_s if loaded else result.load_s,
                              cold=loaded.cold if loaded else result.cold,
                              loaded_ahead=loaded is not None and loaded.cold,
                              cores_shared=ahead.cores_shared,
                              queued_s=max(result.started_at - waited_from, 0.0),
                              csv=result.csv, rows=result.rows, validate_s=result.validate_s,
                              peak_rss=result.peak_rss, model_size=result.model_size,
                              figures=result.figures, data_wait_s=result.data_wait_s)

    async def inspect(self, spec: PredictorSpec, model_name: str = "",
                      timeout_s: float = 300.0, environment: str | None = None
                      ) -> PredictorInfo:
        """Load the predictor in a worker of `environment` (warming it there) and report
        its signature.

        Raises PredictorLoadError when it cannot be loaded (EnvironmentNotReady when its
        environment cannot run), or PredictorTimeout / WorkerDied.
        """
        if environment is not None:
            await self._envs.ready(environment, self._scheduler())
        request = TaskRequest(key="", model_name=model_name or spec.ref,
                              spec=spec.refreshed(), environment=environment)
        return await self._run(worker_side.inspect_predictor, request, _no_args, timeout_s,
                               "inspect")

    async def cache_stats(self) -> dict[str, dict[str, int]]:
        """Per worker: how many times each predictor key was loaded there."""
        stats: dict[str, dict[str, int]] = await self.client.run(worker_side.cache_stats)
        return stats

    def environments_running(self) -> list[str]:
        """The configured environments whose workers are up now (they start when one of
        their models predicts, and stop after their `idle_stop`)."""
        return self._envs.running()

    async def _load_ahead(self, request: TaskRequest, timeout_s: float,
                          run_id: str) -> PredictorInfo | None:
        """Load `request`'s predictor in whichever worker is free (`LoadAhead`), timed and
        watched as the task itself; None when its worker was lost before it started."""
        key = f"autopilot-ahead-{run_id}-{uuid.uuid4().hex[:12]}"
        try:
            return await self._run_once(worker_side.inspect_predictor, replace(request, key=key),
                                        (), timeout_s, last_attempt=False)
        except _NotStarted:
            return None

    def _scheduler(self) -> str:
        """The scheduler's address (the local cluster's, or the configured one)."""
        if self._cluster.address is None:
            raise RuntimeError("Executor is not started; use 'async with Executor(...)'")
        return self._cluster.address

    def _on_event(self, event: tuple[float, dict[str, Any]]) -> None:
        msg = event[1]
        key = msg.get("key", "")
        if msg.get("event") == "started":
            waiter = self._started.get(key)
            if waiter is not None and not waiter.done():
                waiter.set_result(Start(msg["worker"], int(msg["pid"]),
                                        asyncio.get_running_loop().time()))
            elif waiter is None:
                self._abandoned.started(key, msg["worker"], int(msg["pid"]))
        elif msg.get("event") == "exit" and key in self._started:
            self._reasons[key] = str(msg["reason"])

    def _capacity(self) -> int:
        """Tasks in flight: two per worker thread. The scheduler (worker-saturation 1.0)
        hands a worker a task only when a thread is free, so the second one waits at the
        scheduler, not behind a task that may hang, and starts the moment a thread frees
        instead of after the previous result has reached the executor."""
        info = self.client.scheduler_info()
        return max(int(info.get("total_threads", 0) or 0), 1) * _IN_FLIGHT_PER_THREAD

    def _cores(self) -> int:
        """This machine's cores (local cluster), or an external cluster's Dask threads."""
        if self.config.scheduler is None:
            return machine_cores()
        return max(int(self.client.scheduler_info().get("total_threads", 0) or 0), 1)

    async def _run(self, func: Callable[..., T | Failed],
                   request: TaskRequest,
                   args: Callable[[], Awaitable[tuple[Any, ...]]], timeout_s: float,
                   label: str, expected: Expected | None = None,
                   ready: asyncio.Future[Any] | None = None,
                   ahead: LoadAhead | None = None) -> T:
        # Tasks are handed to the scheduler only up to `_capacity()`: given them all, it
        # would queue some on busy workers, behind a task that may hang, and blame them
        # when that worker is killed. A task that still dies before it started was only
        # queued on the dead worker: it is innocent and gets another go, as does a task
        # cancelled because the scattered round data was lost with the workers holding it
        # (other runs' workers). A task whose own worker died while it ran is never re-run
        # here (it may be what kills workers; the ledger decides about retries). Which
        # task goes next, with how many threads: `Slots`. A task whose data is still
        # `ready`-ing when its turn comes loads meanwhile, then waits at a `DataGate`. One
        # held back by a solo task loads `ahead` on the idle worker and then runs there.
        try:
            async with self._slots.slot(expected, ready,
                                        self._aheads.starter(ahead) if ahead else None
                                        ) as threads:
                warm = await ahead.loaded() if ahead is not None else None
                gate = DataGate(self.client, ready) if ready and not ready.done() else None
                request = replace(request, threads=threads,
                                  data_event=None if gate is None else gate.name)
                with gate or contextlib.nullcontext():
                    for attempt in range(1, _START_ATTEMPTS + 1):
                        key = f"autopilot-{label}-{uuid.uuid4().hex[:12]}"
                        try:
                            return await self._run_once(
                                func, replace(request, key=key), await args(), timeout_s,
                                attempt == _START_ATTEMPTS, None if gate is None else gate.opened,
                                warm.worker if warm is not None and attempt == 1 else None)
                        except _NotStarted:
                            continue
                    raise AssertionError("unreachable")
        finally:
            shared = self._aheads.shared()  # whatever task this is (an inspection too)
            if ahead is not None:
                await ahead.close()
                ahead.cores_shared = shared

    async def _run_once(self, func: Callable[..., T | Failed],
                        request: TaskRequest,
                        args: tuple[Any, ...], timeout_s: float, last_attempt: bool,
                        gate: asyncio.Future[float] | None = None,
                        worker: str | None = None) -> T:
        """One submission of the task; the timeout's clock waits for the `gate` to open.
        `worker`: where it should run if that worker is still there (its model is warm).
        Cancelled once the task may have started, it ends its worker's process."""
        from distributed import KilledWorker
        from distributed.client import FutureCancelledError

        key, name = request.key, request.model_name
        loop = asyncio.get_running_loop()
        started: asyncio.Future[Start] = loop.create_future()
        self._started[key] = started
        placed = {"workers": [worker], "allow_other_workers": True} if worker else {}
        future = self.client.submit(func, request, *args, key=key, pure=False, retries=0,
                                    resources=resources_for(request.environment,
                                                            bool(self._envs)), **placed)
        result: asyncio.Future[T] = asyncio.ensure_future(future)
        killed = False
        try:
            either: list[asyncio.Future[Any]] = [started, result]
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            if started.done() and not result.done():
                begun = started.result().at
                if gate is not None:  # the task waits for the round's data: not timed
                    await asyncio.wait([either[1], gate], return_when=asyncio.FIRST_COMPLETED)
                    if gate.done() and not gate.cancelled():
                        begun = max(begun, gate.result())
                remaining = timeout_s - (loop.time() - begun)
                done, _ = await asyncio.wait({result}, timeout=max(remaining, 0.0))
                if not done:
                    info = started.result()
                    killed = True
                    await self._cluster.kill_worker(info.worker, info.pid)
                    raise PredictorTimeout(
                        f"model {name!r}: predictor timed out after {timeout_s:g} s; worker "
                        f"{info.worker} was restarted (raise the model's timeout if it "
                        f"needs longer)"
                    )
            try:
                value = result.result()
            except KilledWorker as exc:
                if not started.done():
                    if last_attempt:
                        raise WorkerDied(f"model {name!r}: workers died {_START_ATTEMPTS} "
                                         f"times before the task started") from exc
                    raise _NotStarted from exc
                raise WorkerDied(await self._cluster.death_message(
                    name, started.result().pid, lambda: self._reasons.get(key))) from None
            except FutureCancelledError as exc:
                # the scattered round data was lost with the workers holding it, before or
                # while this task ran elsewhere: not this predictor's doing
                if last_attempt:
                    raise WorkerDied(f"model {name!r}: the task was cancelled "
                                     f"{_START_ATTEMPTS} times ({exc.reason}): the round "
                                     f"data was lost with the workers holding it") from exc
                raise _NotStarted from exc
            except (PredictorError, ValidationError, asyncio.CancelledError):
                raise  # the first two raised by the task, on the worker
            except Exception as exc:
                raise PredictorError(f"model {name!r}: the executor could not run the "
                                     f"predictor: {type(exc).__name__}: {exc}") from exc
            if isinstance(value, Failed):
                raise value.error
            return value
        finally:
            self._started.pop(key, None)  # a start published from now on goes to Abandoned
            if not result.done():
                result.cancel()  # queued: the scheduler forgets it; running: see Abandoned
                if not killed:
                    self._abandoned.give_up(key, started.result() if started.done()
                                            and not started.cancelled() else None)
            with contextlib.suppress(BaseException):
                await result
            if not started.done():
                started.cancel()
            self._reasons.pop(key, None)
            future.release()


class _NotStarted(Exception):
    pass


async def _no_args() -> tuple[Any, ...]:
    return ()
