"""Run predictors on Dask workers (a LocalCluster on 127.0.0.1, or an external scheduler).

    specs = {name: parse_predictor(model.predictor, base_dir) for ...}   # runs no user code
    async with Executor(config.executor, local_directory=...) as executor:
        outcome = await executor.predict(PredictJob(run_id, name, specs[name], live_path))

Importing this package does not import distributed, pandas, pyarrow or pydantic;
``Executor.start`` imports distributed. See ``executor.py`` for how timeouts, memory limits
and crashes are detected, and ``errors.py`` for what each failure raises.
"""

from numerai_autopilot.executor.errors import (
    PredictorLoadError,
    PredictorOutputError,
    PredictorRaised,
    PredictorTimeout,
    WorkerDied,
)
from numerai_autopilot.executor.executor import Executor
from numerai_autopilot.executor.jobs import PredictJob, PredictorInfo, PredictOutcome
from numerai_autopilot.executor.predictors import (
    BenchmarkPredictor,
    Predictor,
    PredictorKind,
    PredictorSpec,
    load_predictor,
    parse_predictor,
)
from numerai_autopilot.executor.slots import Expected

__all__ = [
    "BenchmarkPredictor",
    "Executor",
    "Expected",
    "PredictJob",
    "PredictOutcome",
    "Predictor",
    "PredictorInfo",
    "PredictorKind",
    "PredictorLoadError",
    "PredictorOutputError",
    "PredictorRaised",
    "PredictorSpec",
    "PredictorTimeout",
    "WorkerDied",
    "load_predictor",
    "parse_predictor",
]
