"""The project's one root exception and its tree.

    AutopilotError
    ├── ConfigError                  config file or environment is wrong (names key and file)
    ├── NumeraiError                 numerai_autopilot.numerai.errors
    │   ├── AuthenticationError      keys missing or refused
    │   ├── GraphQLError             Numerai refused it: {"errors": [...]} (operation, message)
    │   │   └── NotFoundError        the thing asked for does not exist (model, file, round)
    │   ├── UploadError              the presigned PUT failed; never followed by create_submission
    │   └── TransientError           5xx, timeout, connection reset, malformed JSON, Numerai's
    │       │                        internal error/timeout/rate limit as a GraphQL error: retried
    │       └── DeadlineExceeded     retries ran out of time; carries the last transient cause
    ├── LedgerError                  the run ledger refused an operation
    │   └── AmbiguousRunId           a run id prefix that several runs' ids start with
    ├── PredictorError               user code failed: load, raise, timeout, crash, memory;
    │                                a blend's members missing (runs/blend.py BlendError)
    ├── ValidationError              predictions are not a valid submission (says what and how many)
    ├── CommandError                 numerai_autopilot.deploy.runner: gcloud / litestream failed
    ├── EnvironmentBuildError        `autopilot envs build` could not build an [environments.NAME]
    │                                (interpreter missing, requirements refused, pip failed)
    └── ServiceCheckError            numerai_autopilot.deploy.health: the deployed service is not
                                     reachable without credentials (what it answered, the fix)

Third-party exceptions are translated at each boundary with ``raise ... from exc``.
"""


class AutopilotError(Exception):
    """Root of every error this project raises on purpose."""


class ConfigError(AutopilotError):
    """The configuration is invalid; the message names the key and the file."""


class LedgerError(AutopilotError):
    """The ledger refused an operation (unknown run, illegal state change)."""


class AmbiguousRunId(LedgerError):
    """A shortened run id that several runs' ids start with; the message says how many."""

    def __init__(self, prefix: str, matches: int) -> None:
        super().__init__(f"run id {prefix!r} is the start of {matches} runs' ids; give more "
                         "of its characters (`autopilot runs` shows each id's shortest "
                         "unique start)")
        self.prefix = prefix
        self.matches = matches


class PredictorError(AutopilotError):
    """A predictor could not be loaded or failed while predicting."""


class ValidationError(AutopilotError):
    """Predictions are not a valid submission; the message says what is wrong and how to fix it."""


class EnvironmentBuildError(AutopilotError):
    """An `[environments.NAME]` could not be built: its interpreter is missing, its
    requirements conflict with the versions Dask holds, or the installer failed. The message
    names the environment, what went wrong and the fix."""
