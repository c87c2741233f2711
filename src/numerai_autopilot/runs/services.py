"""What every run of a process shares (`Services`), and the names the pipeline's parts use.

    services = Services(config, ledger, client, rounddata, rounds, executor, predictors)
    pipeline = Pipeline(services, owner)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from numerai_autopilot.config import AppConfig, ModelConfig, format_size
from numerai_autopilot.errors import AutopilotError
from numerai_autopilot.executor import Executor
from numerai_autopilot.executor.predictors import PredictorSpec
from numerai_autopilot.ledger import Ledger, Run
from numerai_autopilot.numerai import NumeraiClient
from numerai_autopilot.runs.rounddata import RoundData
from numerai_autopilot.runs.rounds import CurrentRounds


class RunSkipped(AutopilotError):
    """The run must not upload (already submitted); the message says why."""


def fallback_key(model_name: str) -> str:
    """The key of a model's fallback predictor in `Services.predictors`."""
    return f"{model_name}:fallback"


def predicting_note(model: ModelConfig, spec: PredictorSpec) -> str:
    """A run's log line as it starts predicting: the predictor, its time and memory limits
    (and its environment, when it has one of its own)."""
    limit = f", memory limit {format_size(model.memory)}" if model.memory else ""
    where = f" in environment {model.environment!r}" if model.environment else ""
    return f"predicting with {spec.ref}{where} (timeout {model.timeout:g} s{limit})"


@dataclass
class Services:
    """Everything a run needs, built once per process and passed in.

    `rounds` is the process's shared current-round cache; `notify` is called when a run
    failed, used its fallback or was found suspect, `on_change` after every committed state change (metrics,
    round summaries; it must not block).
    """

    config: AppConfig
    ledger: Ledger
    client: NumeraiClient
    rounddata: RoundData
    rounds: CurrentRounds
    executor: Executor
    predictors: dict[str, PredictorSpec]
    notify: Callable[[Run], Awaitable[None]] | None = None
    on_change: Callable[[Run, Run], None] | None = None
