"""What people see of the runs: logs, alerts, Prometheus metrics, round summaries.

Everything here is best-effort: a failing alert or metric never fails a run.
"""

from numerai_autopilot.observe.alerts import Alerter, redact
from numerai_autopilot.observe.logs import cloud_trace, current_trace, setup_logging
from numerai_autopilot.observe.metrics import Metrics
from numerai_autopilot.observe.monitor import Monitor

__all__ = [
    "Alerter",
    "Metrics",
    "Monitor",
    "cloud_trace",
    "current_trace",
    "redact",
    "setup_logging",
]
