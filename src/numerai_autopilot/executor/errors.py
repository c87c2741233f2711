"""Executor failures; all are numerai_autopilot.errors.PredictorError.

    PredictorError
    ├── PredictorLoadError     import / unpickle failed, or the object is not a predictor
    ├── PredictorRaised        the predictor raised (type, message, end of traceback)
    ├── PredictorOutputError   the predictor returned the wrong kind of thing
    ├── PredictorTimeout       ran past its timeout; its worker was killed and replaced
    └── WorkerDied             its worker process died: memory limit, os._exit, segfault

The classes are defined here, importable without distributed, so workers can raise them
and the client can unpickle them.
"""

from numerai_autopilot.errors import PredictorError


class PredictorLoadError(PredictorError):
    """The predictor could not be loaded in a worker."""


class PredictorRaised(PredictorError):
    """The predictor raised an exception while predicting."""


class PredictorOutputError(PredictorError):
    """The predictor returned something that is not predictions."""


class PredictorTimeout(PredictorError):
    """The predictor ran past its timeout; its worker process was killed."""


class WorkerDied(PredictorError):
    """The worker process running the predictor died (memory limit, crash)."""
