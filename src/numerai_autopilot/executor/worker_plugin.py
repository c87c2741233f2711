"""A Dask worker plugin: each worker imports what a prediction's validation needs as it
starts, in a thread, so the first run on a worker does not wait for it (numerai-tools pulls
in scipy). Registered once per cluster; Dask runs it on workers that join later too (a
restarted worker included).

Imported only where the cluster starts: it imports `distributed` at module level.
"""

from __future__ import annotations

import threading
from typing import Any

from distributed import WorkerPlugin


class WarmImports(WorkerPlugin):
    """Starts the imports in a daemon thread when a worker sets up; never fails the worker."""

    name = "numerai-autopilot-warm-imports"

    def setup(self, worker: Any) -> None:
        threading.Thread(target=_import, name="autopilot-warm-imports", daemon=True).start()


def _import() -> None:
    from numerai_autopilot.validation import warm_up

    warm_up()
