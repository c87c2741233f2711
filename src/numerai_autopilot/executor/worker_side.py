"""Code that runs inside Dask worker processes: load, map the round data, predict, check.

Everything here executes in a worker, never in the server (the round's files:
`worker_files`). Loaded predictors are kept in a
per-process cache keyed by ``PredictorSpec.key``, so a model stays warm between rounds and
is reloaded when its file changes. A watchdog thread enforces the per-model memory limit by
recording the reason (an event the executor subscribes to) and ending the process; the nanny
then starts a fresh worker.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

from numerai_autopilot.config import format_size
from numerai_autopilot.errors import PredictorError, ValidationError
from numerai_autopilot.executor.errors import PredictorLoadError, PredictorRaised
from numerai_autopilot.executor.jobs import Failed, PredictorInfo, TaskRequest, TaskResult
from numerai_autopilot.executor.outputs import as_predictions
from numerai_autopilot.executor.predictors import LoadedPredictor
from numerai_autopilot.executor.threads import native_threads
from numerai_autopilot.executor.tracebacks import raised_message
from numerai_autopilot.executor.warm import WarmModels
from numerai_autopilot.executor.worker_files import round_frame, round_path
from numerai_autopilot.validation import submission_csv

if TYPE_CHECKING:
    import pandas as pd

TOPIC = "numerai-autopilot-executor"
MEMORY_EXIT_CODE = 86
# Fraction of the worker's own memory limit at which the watchdog ends the process itself,
# below the nanny's terminate threshold (95%) so the reason is ours to record.
WORKER_LIMIT_FRACTION = 0.9
_SAMPLE_S = 0.02
_PUBLISH_WAIT_S = 10.0
# A task loaded while the round's data downloads waits at most this long for it (the
# executor sets the event when the download ends either way; this bounds a lost server).
_DATA_WAIT_S = 3600.0
# Without `executor.warm_budget`: the share of the worker's memory limit its warm models may
# take; the rest is for a prediction's own arrays.
WARM_BUDGET_FRACTION = 0.5


WARM = WarmModels()


def cache_stats() -> dict[str, int]:
    """How many times each predictor key was loaded in this worker process."""
    return WARM.stats()


def warm_sizes() -> dict[str, int]:
    """The predictors warm in this worker process and their sizes in bytes."""
    return WARM.sizes()


def _worker() -> Any:
    from distributed import get_worker

    return get_worker()


class _Published:
    """An event for the executor, sent through the scheduler's ``log_event`` call. It
    answers once the scheduler holds the event and has queued it for the executor's client,
    ahead of anything it learns later, such as this worker's death.

    ``Worker.log_event`` batches events (longer while its event loop waits for the GIL): an
    event sent that way just before the process ends could go down with it.
    """

    def __init__(self, worker: Any, event: dict[str, Any]) -> None:
        self._worker, self._event = worker, event
        call = worker.scheduler.log_event(topic=TOPIC, msg=event)
        self._ack: Future[Any] = asyncio.run_coroutine_threadsafe(call,
                                                                  worker.loop.asyncio_loop)

    def wait(self, timeout_s: float = _PUBLISH_WAIT_S) -> bool:
        """Whether the scheduler acknowledged it; if not (busy or gone), it goes the
        batched way, which may still get it out."""
        try:
            self._ack.result(timeout=timeout_s)
            return True
        except Exception:  # noqa: BLE001  whatever the call raised, the fallback is the same
            self._ack.cancel()
            self._worker.log_event(TOPIC, self._event)
            return False


def _announce(worker: Any, request: TaskRequest) -> _Published:
    """Publish this task's start; ``wait()`` for it before any user code runs.

    When a worker dies, the executor re-runs a task that had not started there (it was only
    queued) but never one that had (it may be what kills workers). So the start must reach
    the scheduler before the predictor can end the process: a start lost with the process
    would have the predictor run again on the next worker, and the next.
    """
    return _Published(worker, {"event": "started", "key": request.key,
                               "worker": worker.address, "pid": os.getpid()})


class _MemoryWatchdog(threading.Thread):
    """Ends this worker process when the task outgrows its memory limit.

    The per-model limit counts RSS growth since the task started (what this prediction
    adds: its model if loaded now, the pages of round data it touches, its own arrays; for
    a worker's first task of a round, the round's frame and prediction health arrays).
    The worker's own limit counts the whole process.
    """

    def __init__(self, worker: Any, request: TaskRequest) -> None:
        super().__init__(name=f"autopilot-watchdog-{request.key}", daemon=True)
        import psutil

        self._process = psutil.Process()
        self._worker = worker
        self._key = request.key
        self._stop_event = threading.Event()
        baseline = self._process.memory_info().rss
        self.peak = baseline
        self._limits: list[tuple[int, str]] = []
        if request.memory_limit_bytes is not None:
            self._limits.append((baseline + request.memory_limit_bytes,
                                 f"memory limit {format_size(request.memory_limit_bytes)}"))
        worker_limit = getattr(getattr(worker, "memory_manager", None), "memory_limit", None)
        if worker_limit:
            self._limits.append((int(worker_limit * WORKER_LIMIT_FRACTION),
                                 f"worker memory limit {format_size(int(worker_limit))}"))

    def run(self) -> None:
        while not self._stop_event.wait(_SAMPLE_S):
            rss = self._process.memory_info().rss
            self.peak = max(self.peak, rss)
            for limit, reason in self._limits:
                if rss > limit:
                    self._die(f"{reason} (process at {format_size(rss)})")

    def _die(self, reason: str) -> None:
        try:
            exit_event = _Published(self._worker, {"event": "exit", "key": self._key,
                                                   "reason": reason})
            if not exit_event.wait(timeout_s=1.0):
                time.sleep(0.25)  # let the worker's batched stream carry the event out
        finally:
            os._exit(MEMORY_EXIT_CODE)

    def rss(self) -> int:
        return int(self._process.memory_info().rss)

    def stop(self) -> None:
        self._stop_event.set()


async def kill_this_process() -> None:
    """Run on a worker's event loop (``Client.run(..., wait=False)`` needs a coroutine
    function) to stop a task that timed out."""
    import signal

    os.kill(os.getpid(), signal.SIGKILL)


def run_prediction(request: TaskRequest, live_blob: bytes | None,
                   benchmark_blob: bytes | None) -> TaskResult | Failed:
    """The Dask task: load (or reuse) the predictor, call it, return id + prediction.

    ``live_blob`` / ``benchmark_blob``: the round files' bytes when they were scattered
    (None: the request's paths are opened). With ``request.validate_for`` the result holds
    the validated submission CSV instead of the frame. PredictorLoadError, PredictorRaised,
    PredictorOutputError and ValidationError come back as `Failed`; a memory limit ends
    the process instead (the executor reports WorkerDied).
    """
    try:
        return _predict(request, live_blob, benchmark_blob)
    except (PredictorError, ValidationError) as exc:
        return Failed(exc)


def _predict(request: TaskRequest, live_blob: bytes | None,
             benchmark_blob: bytes | None) -> TaskResult:
    started_at = time.time()
    worker = _worker()
    announcement = _announce(worker, request)
    watchdog = _MemoryWatchdog(worker, request)
    watchdog.start()
    try:
        data_wait_s: float | None = None
        if request.data_event is not None:  # the round's data is downloading: load meanwhile
            announcement.wait()
            loaded, load_s, cold = _load(worker, request)
            data_wait_s = _wait_for_data(worker, request)
        live_path = round_path(worker, request.live_path, live_blob, request.live_token)
        references = _references(request)
        if references is not None:  # the health figures' arrays, while it predicts
            from numerai_autopilot.validation.health import build_ahead

            build_ahead(live_path, *references)
        live = round_frame(live_path)
        if request.data_event is None:
            announcement.wait()
            loaded, load_s, cold = _load(worker, request)
        args: list[pd.DataFrame] = [live]
        if loaded.wants_benchmarks:
            if request.benchmark_path is None and benchmark_blob is None:
                raise PredictorLoadError(
                    f"model {request.model_name!r}: predictor {request.spec.ref!r} takes "
                    f"(live_features, live_benchmark_models) but no benchmark models were "
                    f"given; download the live benchmark models for this model"
                )
            args.append(round_frame(round_path(worker, request.benchmark_path,
                                               benchmark_blob, request.benchmark_token)))
        cpu, start = time.process_time(), time.perf_counter()
        try:
            with native_threads(request.threads):
                output = loaded.function(*args)
        except BaseException as exc:  # noqa: BLE001  user code's SystemExit is a failure too
            hint = _missing_package(exc, request.environment)
            raise PredictorRaised(raised_message(request.model_name, exc, __file__)
                                  + (f"\n{hint}" if hint else "")) from None
        compute_s, cpu_s = time.perf_counter() - start, time.process_time() - cpu
        predictions = as_predictions(request.model_name, output)
        if request.validate_for is not None:
            start = time.perf_counter()
            csv, rows = submission_csv(predictions, live_path, request.model_name,
                                       request.validate_for)
            validate_s = time.perf_counter() - start
        else:
            csv, rows, validate_s = None, 0, 0.0
    finally:
        watchdog.stop()
    peak = max(watchdog.peak, watchdog.rss())  # the round's health arrays are not the model's
    start = time.perf_counter()
    figures = _figures(csv, live_path, references)
    return TaskResult(None if csv is not None else predictions, compute_s, load_s, cold,
                      worker.address, started_at, csv, rows,
                      validate_s + time.perf_counter() - start, peak,
                      WARM.measured(request.spec), figures, cpu_s, request.threads, data_wait_s)


def _wait_for_data(worker: Any, request: TaskRequest) -> float:
    """Block until the executor sets the request's data event (the round's files are on
    disk, or their download failed: the files are then missing and opening them fails).
    Returns the seconds waited; PredictorError when it is not set within `_DATA_WAIT_S`."""
    start = time.perf_counter()
    call = worker.scheduler.event_wait(name=request.data_event, timeout=_DATA_WAIT_S)
    if not asyncio.run_coroutine_threadsafe(call, worker.loop.asyncio_loop).result():
        raise PredictorError(f"model {request.model_name!r}: the round's data did not arrive "
                             f"within {_DATA_WAIT_S:g} s of the model's load")
    if request.live_path is not None and not Path(request.live_path).exists():
        raise PredictorError(f"model {request.model_name!r}: the round's data could not be "
                             f"fetched (the run's log says why)")
    return time.perf_counter() - start


def _references(request: TaskRequest) -> tuple[Path | None, Path | None, int] | None:
    """The round's benchmark and example files and the tournament the request's health
    figures are computed with; None when it asked for none."""
    if request.references is None or request.validate_for is None:
        return None
    benchmark, example = request.references
    return (Path(benchmark) if benchmark else None, Path(example) if example else None,
            request.validate_for)


def _figures(csv: bytes | None, live_path: Path,
             references: tuple[Path | None, Path | None, int] | None
             ) -> dict[str, float] | None:
    """The validated CSV's prediction health figures when the request asked for them; None
    when it did not, or when they cannot be computed here (the server computes them)."""
    if csv is None or references is None:
        return None
    from numerai_autopilot.validation.health import cached_frame, figures

    try:
        return figures(csv, cached_frame(live_path, *references))
    except Exception:  # noqa: BLE001  whatever went wrong here, the server tries again
        return None


def inspect_predictor(request: TaskRequest) -> PredictorInfo | Failed:
    """The Dask task behind ``Executor.inspect`` and loads ahead of a turn: load it (or
    find it warm) and read its signature (a PredictorLoadError comes back as `Failed`)."""
    worker = _worker()
    announcement = _announce(worker, request)
    watchdog = _MemoryWatchdog(worker, request)
    watchdog.start()
    try:
        announcement.wait()
        loaded, load_s, cold = _load(worker, request)
    except PredictorError as exc:
        return Failed(exc)
    finally:
        watchdog.stop()
    return PredictorInfo(wants_benchmarks=loaded.wants_benchmarks, worker=worker.address,
                         load_s=load_s, cold=cold)


def _load(worker: Any, request: TaskRequest) -> tuple[LoadedPredictor, float, bool]:
    limit = getattr(getattr(worker, "memory_manager", None), "memory_limit", None)
    limit = int(limit) if limit else None
    budget = request.warm_budget_bytes
    if budget is None and limit is not None:
        budget = int(limit * WARM_BUDGET_FRACTION)
    try:
        return WARM.get(request.spec, budget=budget, limit=limit)
    except PredictorError as exc:
        hint = _missing_package(exc, request.environment)
        raise PredictorLoadError(f"model {request.model_name!r}: {exc}"
                                 + (f"; {hint}" if hint else "")) from None
    except BaseException as exc:  # noqa: BLE001  whatever user code raises while loading
        hint = _missing_package(exc, request.environment)
        raise PredictorLoadError(
            f"model {request.model_name!r}: loading {request.spec.ref!r} failed: "
            f"{type(exc).__name__}: {exc}" + (f"; {hint}" if hint else "")
        ) from None


def _missing_package(exc: BaseException, environment: str | None) -> str:
    """When `exc` (or its cause) is an ImportError: a sentence naming the package missing
    from the environment the predictor ran in, and how to add it; else "" (a user's own
    ImportError of another kind reads as it was raised)."""
    cause = exc if isinstance(exc, ImportError) else exc.__cause__
    if not isinstance(cause, ImportError):
        return ""
    package = repr((cause.name or "").split(".")[0]) if cause.name else "a package"
    if environment is not None:
        return (f"environment {environment!r} lacks {package}: add it to its requirements "
                f"and run `autopilot envs build {environment}`")
    return (f"the service's environment lacks {package}: install it there, or give the "
            f"model an environment that has it (models.NAME.environment)")
