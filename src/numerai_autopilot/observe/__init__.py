"""What people see of the runs: alerts, Prometheus metrics, round summaries (the log set-up,
which every layer and the workers use, is `numerai_autopilot.logs`).

Everything here is best-effort: a failing alert or metric never fails a run.

Names are imported on first use: importing one part does not import the others'
dependencies (the monitor's are the whole run machinery).
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from numerai_autopilot.observe.alerts import Alerter, redact
    from numerai_autopilot.observe.metrics import Metrics
    from numerai_autopilot.observe.monitor import Monitor

_MODULES = {"Alerter": "alerts", "redact": "alerts", "Metrics": "metrics", "Monitor": "monitor"}

__all__ = [
    "Alerter",
    "Metrics",
    "Monitor",
    "redact",
]


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return getattr(importlib.import_module(f"{__name__}.{_MODULES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
