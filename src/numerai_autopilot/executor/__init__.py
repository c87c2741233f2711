"""Run predictors on Dask workers (a LocalCluster on 127.0.0.1, or an external scheduler).

Importing this package does not import distributed, pandas or pyarrow; ``Executor.start``
does. See ``executor.py`` for how timeouts, memory limits and crashes are detected.
"""

from numerai_autopilot.executor.errors import (
    PredictorLoadError,
    PredictorOutputError,
    PredictorRaised,
    PredictorTimeout,
    WorkerDied,
)
from numerai_autopilot.executor.executor import Executor
from numerai_autopilot.executor.jobs import (
    ExecutorSettings,
    PredictJob,
    PredictorInfo,
    PredictOutcome,
)

__all__ = [
    "Executor",
    "ExecutorSettings",
    "PredictJob",
    "PredictOutcome",
    "PredictorInfo",
    "PredictorLoadError",
    "PredictorOutputError",
    "PredictorRaised",
    "PredictorTimeout",
    "WorkerDied",
]
