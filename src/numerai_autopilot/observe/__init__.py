"""What people see of the runs: logs, alerts, Prometheus metrics, round summaries.

Everything here is best-effort: a failing alert or metric never fails a run.

Names are imported on first use: worker processes set up their logging with `logs` alone,
without the server's alerting and metrics.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from numerai_autopilot.observe.alerts import Alerter, redact
    from numerai_autopilot.observe.logs import cloud_trace, current_trace, setup_logging
    from numerai_autopilot.observe.metrics import Metrics
    from numerai_autopilot.observe.monitor import Monitor

_MODULES = {"Alerter": "alerts", "redact": "alerts", "cloud_trace": "logs",
            "current_trace": "logs", "setup_logging": "logs", "Metrics": "metrics",
            "Monitor": "monitor"}

__all__ = [
    "Alerter",
    "Metrics",
    "Monitor",
    "cloud_trace",
    "current_trace",
    "redact",
    "setup_logging",
]


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return getattr(importlib.import_module(f"{__name__}.{_MODULES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
