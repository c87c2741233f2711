"""Tasks given up while they may be running: their worker processes are ended.

    abandoned = Abandoned(cluster.kill_worker)       # one per executor
    abandoned.give_up(key, Start(worker, pid, at))   # cancelled after its start was seen
    abandoned.give_up(key, None)                     # before: its start may be on its way
    abandoned.started(key, worker, pid)              # a start published (the topic's callback)
    await abandoned.close()                          # the kills under way end first

Dask cannot stop a thread. A predictor whose run was cancelled (the service stopping, or its
round's data failing while it loaded) would go on in its worker's thread, and the tasks the
scheduler sends that worker next would wait behind it, unstarted, so untimed: for as long as
it runs, forever if it hangs. Ending the process, as a timeout does, frees the worker (its
nanny starts a new one). A worker publishes a task's start before any of its user code runs,
but the start may reach the executor after the task was cancelled: such a key is remembered
a while, and its worker ended when the start arrives.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

_REMEMBER_S = 300.0  # a start arrives within milliseconds; a task never started never does


@dataclass(frozen=True)
class Start:
    """A task's start, as its worker published it."""

    worker: str
    pid: int
    at: float  # the executor's loop time when the start arrived


class Abandoned:
    """Ends the worker processes of tasks given up while they may run.

    :param kill: ends a worker's process, given its address and pid (`Cluster.kill_worker`).
    """

    def __init__(self, kill: Callable[[str, int], Awaitable[None]]) -> None:
        self._kill = kill
        self._waiting: dict[str, float] = {}  # key -> when given up, its start not yet seen
        self._kills: set[asyncio.Task[None]] = set()

    def give_up(self, key: str, start: Start | None) -> None:
        """Task `key` was cancelled: end its worker now if its `start` was seen, else when
        the start arrives (`started`)."""
        if start is not None:
            self._end(start.worker, start.pid)
            return
        now = time.monotonic()
        for old in [k for k, at in self._waiting.items() if now - at > _REMEMBER_S]:
            del self._waiting[old]
        self._waiting[key] = now

    def started(self, key: str, worker: str, pid: int) -> bool:
        """A task's start was published: True (and its worker is being ended) when the task
        was given up before; False for any other task."""
        if self._waiting.pop(key, None) is None:
            return False
        self._end(worker, pid)
        return True

    async def close(self) -> None:
        """Wait for the kills under way (the client is about to close)."""
        if self._kills:
            await asyncio.gather(*self._kills, return_exceptions=True)

    def _end(self, worker: str, pid: int) -> None:
        task = asyncio.ensure_future(self._kill(worker, pid))
        self._kills.add(task)  # referenced until done (asyncio keeps weak ones)
        task.add_done_callback(self._kills.discard)
        task.add_done_callback(lambda done: done.cancelled() or done.exception())  # seen

