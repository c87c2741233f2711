"""Plain values the executor takes (a job) and returns (an outcome, a predictor's info), and
those it sends to a worker task and gets back (`TaskRequest`, `TaskResult`, `Failed`).

Where predictors run is the ``[executor]`` table itself (``config.ExecutorConfig``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from numerai_autopilot.errors import PredictorError, ValidationError
from numerai_autopilot.executor.predictors import PredictorSpec

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class PredictJob:
    """One model's prediction for one run.

    ``timeout_s`` counts from the moment the task starts on a worker (loading included),
    not while it waits for a free worker or for the round's data. ``memory_limit_bytes`` caps what this prediction
    adds to the worker's memory (RSS growth from the task's start); None: only the
    worker's own limit applies. ``validate_for``: a tournament number to validate the
    predictions against on the worker and return them as the submission CSV
    (``PredictOutcome.csv``); a failed check raises ValidationError. None: the
    predictions come back as a frame, which a job in an ``environment`` may not ask for
    (ValueError).
    """

    run_id: str
    model_name: str
    predictor: PredictorSpec
    live_path: Path
    benchmark_path: Path | None = None
    timeout_s: float = 600.0
    memory_limit_bytes: int | None = None
    validate_for: int | None = None
    environment: str | None = None  # an `[environments.NAME]` to run in; None: the service's
    health: bool = False
    example_path: Path | None = None

    def __post_init__(self) -> None:
        if self.environment is not None and self.validate_for is None:
            # a frame pickled across two pandas versions
            raise ValueError("a job in an environment must be validated on its worker "
                             "(validate_for): only the submission's CSV comes back")


@dataclass(frozen=True)
class PredictOutcome:
    """One prediction's result: the predictions (or, when the job asked for validation, the
    submission CSV), and where the time went."""

    predictions: pd.DataFrame | None  # index "id", one float column "prediction"; None: `csv`
    compute_s: float  # the predictor's own call
    worker: str
    cpu_s: float | None = None  # the worker process's CPU time (all threads) during the call
    threads: int = 1  # the native threads the predictor was given
    load_s: float = 0.0  # 0 when the predictor was already warm in the worker
    cold: bool = False
    # from predict() (from the data's arrival, for a task that did not load while it came)
    # to the task's start: a free worker, the scheduler
    queued_s: float = 0.0
    csv: bytes | None = None  # the validated submission, when the job asked for it
    rows: int = 0  # rows in `csv`
    validate_s: float = 0.0  # validation and serialisation on the worker
    peak_rss: int = 0  # the worker process's peak memory (bytes) while the task ran
    model_size: int = 0  # what the predictor took in memory when it was loaded (bytes)
    # `validation.health.figures` of `csv`, when the job gave the example predictions and
    # the worker could open the round's files; None: not computed there
    figures: dict[str, float] | None = None
    # what else the run's record should say (a blend's members: runs/blend.py)
    detail: dict[str, object] = field(default_factory=dict)
    # loaded while the round's data downloaded: how long it then waited for it (None: the
    # data was there when the task started)
    data_wait_s: float | None = None
    # loaded on an idle worker while the model before it predicted on every core
    # (`executor.ahead`); `load_s` is that load's
    loaded_ahead: bool = False
    # it predicted on several threads while the next model loaded ahead on its cores: its
    # wall time then says nothing of how it scales (`Expected.of_run`'s `shared`)
    cores_shared: bool = False


@dataclass(frozen=True)
class PredictorInfo:
    """What only loading a predictor can tell, and where and how long it loaded."""

    wants_benchmarks: bool
    worker: str
    load_s: float = 0.0  # 0 when it was already warm there
    cold: bool = False


@dataclass(frozen=True)
class TaskRequest:
    """What a worker task needs; ``key`` ties its events to the client's bookkeeping."""

    key: str
    model_name: str
    spec: PredictorSpec
    live_path: str | None = None  # None: the bytes arrive as a task argument (scatter)
    live_token: str = ""
    benchmark_path: str | None = None
    benchmark_token: str = ""
    memory_limit_bytes: int | None = None
    validate_for: int | None = None  # a tournament: validate here, return the CSV
    warm_budget_bytes: int | None = None  # what this worker's warm models may take
    threads: int = 1  # native threads (OpenMP, BLAS) the predictor may use
    environment: str | None = None  # the environment it runs in (None: the service's own)
    # compute the health figures against the round's (benchmark, example) files; None: not
    references: tuple[str | None, str | None] | None = None
    # the round's files are still downloading: load, then wait for this Dask Event (its name)
    data_event: str | None = None

    @classmethod
    def of_job(cls, job: PredictJob, spec: PredictorSpec, live_token: str, bench_token: str,
               warm_budget: int | None) -> TaskRequest:
        """The request for `job` (its predictor now `spec`): its round files by path, or by
        the tokens of their scattered bytes (non-empty). The health figures' reference files
        go along when it asked for them and the worker opens the files by path (scattered,
        the server computes them instead)."""
        references = None
        if job.health and job.validate_for is not None and not live_token:
            references = (str(job.benchmark_path) if job.benchmark_path else None,
                          str(job.example_path) if job.example_path else None)
        return cls(key="", model_name=job.model_name, spec=spec,
                   live_path=None if live_token else str(job.live_path), live_token=live_token,
                   benchmark_path=(str(job.benchmark_path)
                                   if job.benchmark_path and not bench_token else None),
                   benchmark_token=bench_token, memory_limit_bytes=job.memory_limit_bytes,
                   validate_for=job.validate_for, warm_budget_bytes=warm_budget,
                   environment=job.environment, references=references)


@dataclass(frozen=True)
class TaskResult:
    """What a prediction task sends back; the executor turns it into a PredictOutcome."""

    predictions: pd.DataFrame | None  # None when validated: `csv` holds the submission
    compute_s: float
    load_s: float
    cold: bool
    worker: str
    started_at: float = 0.0  # wall clock on the worker when the task began
    csv: bytes | None = None
    rows: int = 0
    validate_s: float = 0.0
    peak_rss: int = 0  # the process's peak memory while the task ran
    model_size: int = 0  # the predictor's memory when it was loaded
    figures: dict[str, float] | None = None  # the CSV's health figures, when asked for
    cpu_s: float | None = None  # the process's CPU time (all threads) during the predictor's call
    threads: int = 1  # the native threads it was given
    data_wait_s: float | None = None  # loaded before the data was there: the wait for it


@dataclass(frozen=True)
class Failed:
    """A task's expected failure (the predictor's, or its output's), returned instead of
    raised: Dask logs a raised one as a crash, a second copy of the message on stderr."""

    error: PredictorError | ValidationError
