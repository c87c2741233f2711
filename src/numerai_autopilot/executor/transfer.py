"""How round files reach a cluster's workers: their path (shared storage) or their bytes,
broadcast once per file and reused by every task (`executor.data_transfer`).

    files = RoundFileTransfer(config, lambda: client)
    token = files.token(live_path)           # "" when workers open the path themselves
    blob = await files.get(live_path, token) # None for shared storage; else a Dask future
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from numerai_autopilot.errors import PredictorError

if TYPE_CHECKING:
    from numerai_autopilot.config import ExecutorConfig

_KEEP_SCATTERED = 4
_SCATTER_TIMEOUT_S = 120.0


class RoundFileTransfer:
    """The scattered round files of one client (the latest `_KEEP_SCATTERED`)."""

    def __init__(self, config: ExecutorConfig, client: Callable[[], Any]) -> None:
        self.config = config
        self._client = client
        self._scattered: OrderedDict[str, asyncio.Task[Any]] = OrderedDict()

    def __len__(self) -> int:
        """How many round files are scattered now."""
        return len(self._scattered)

    def close(self) -> None:
        """Forget every scattered file (the client is closing)."""
        for task in self._scattered.values():
            task.cancel()
        self._scattered.clear()

    def token(self, path: Path) -> str:
        """"" for shared storage (the task opens the path); else the file's identity."""
        if self.config.round_file_transfer == "shared":
            return ""
        st = path.stat()
        return hashlib.sha1(f"{path.resolve()}:{st.st_mtime_ns}:{st.st_size}".encode()
                            ).hexdigest()[:16]

    async def get(self, path: Path, token: str) -> Any:
        """None for shared storage. Scatter: the file's bytes, broadcast once per file and
        reused by every task; sent again if the workers holding them died."""
        if not token:
            return None
        task = self._scattered.get(token)
        if task is not None and task.done() and (
            task.cancelled() or task.exception() is not None
            or task.result().status != "finished"
        ):
            self._scattered.pop(token)
            if not task.cancelled() and task.exception() is None:
                task.result().release()
            task = None
        if task is None:
            task = asyncio.ensure_future(self._scatter(path))
            self._scattered[token] = task
            while len(self._scattered) > _KEEP_SCATTERED:
                _, old = self._scattered.popitem(last=False)
                if old.done() and not old.cancelled() and old.exception() is None:
                    old.result().release()
        self._scattered.move_to_end(token)
        try:
            return await asyncio.shield(task)
        except Exception:
            self._scattered.pop(token, None)
            raise

    async def _scatter(self, path: Path) -> Any:
        data = await asyncio.to_thread(path.read_bytes)
        try:
            # workers replaced after a crash may still be starting
            await self._client().wait_for_workers(1, timeout=_SCATTER_TIMEOUT_S)
            return await self._client().scatter(data, broadcast=True, hash=False,
                                             timeout=_SCATTER_TIMEOUT_S)
        except (TimeoutError, OSError) as exc:
            raise PredictorError(
                f"could not send round file {path.name} to the workers within "
                f"{_SCATTER_TIMEOUT_S:g} s ({type(exc).__name__}: {exc}); are workers "
                f"connected to the scheduler?"
            ) from exc
