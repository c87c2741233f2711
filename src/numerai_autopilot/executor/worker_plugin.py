"""Dask worker plugins, registered once per cluster; Dask runs them on workers that join
later too (a restarted worker included).

- `LogSetup`: the worker logs as the server does (text, or JSON for Cloud Logging).
- `WarmImports`: the worker imports what a prediction's validation needs as it starts, in a
  thread, so the first run on a worker does not wait for it (numerai-tools pulls in scipy).

Imported only where the cluster starts: it imports `distributed` at module level.
"""

from __future__ import annotations

import threading
from typing import Any

from distributed import WorkerPlugin


class LogSetup(WorkerPlugin):
    """Sets the worker's logging up with the server's level and format."""

    name = "numerai-autopilot-logging"

    def __init__(self, level: str, fmt: str) -> None:
        self.level, self.fmt = level, fmt

    def setup(self, worker: Any) -> None:
        from numerai_autopilot.logs import setup_logging

        setup_logging(self.level, self.fmt)


class WarmImports(WorkerPlugin):
    """Starts the imports in a daemon thread when a worker sets up; never fails the worker."""

    name = "numerai-autopilot-warm-imports"

    def setup(self, worker: Any) -> None:
        threading.Thread(target=_import, name="autopilot-warm-imports", daemon=True).start()


def _import() -> None:
    from numerai_autopilot.validation import warm_up

    warm_up()
