"""A model loaded on an idle worker before its turn, while a solo model predicts.

    aheads = AheadLoads(spare_threads)                 # one per executor
    ahead = LoadAhead(lambda: load_on_some_worker())   # one per task: -> PredictorInfo, or None
    async with slots.slot(expected, ready, aheads.starter(ahead)):  # called when it is next
        info = await ahead.loaded()    # where it is warm now (None: it was not loaded ahead)
    await ahead.close()
    ahead.cores_shared = aheads.shared()  # its own predict shared its cores with the next load

A solo model (`Slots`) holds every core while it predicts, but a model's load is mostly one
thread (a booster's text parse, an unpickle): loaded only when its turn comes, the next model
leaves all cores but one idle for its whole load. Loaded ahead on the worker the solo model
leaves idle, it then predicts there with its load already done.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from numerai_autopilot.executor.jobs import PredictorInfo


class LoadAhead:
    """One task's load ahead of its turn.

    :param load: loads the predictor in some worker and says which (None: the task never
        started there, e.g. its worker was lost first); raises the load's PredictorError.
    """

    def __init__(self, load: Callable[[], Awaitable[PredictorInfo | None]]) -> None:
        self._load = load
        self._task: asyncio.Future[PredictorInfo | None] | None = None
        self.info: PredictorInfo | None = None
        # this task, given every core, shared them with the next one's load (`AheadLoads`)
        self.cores_shared = False

    def start(self) -> None:
        """Begin loading (once; `Slots` calls it when the task is next in line)."""
        if self._task is None:
            self._task = asyncio.ensure_future(self._load())

    async def loaded(self) -> PredictorInfo | None:
        """At the task's turn: wait for a load begun ahead to end (less time than loading it
        again), and return where it left the predictor warm; None when none was begun or it
        did not start. Raises the load's PredictorError: the task would fail alike (a load
        that timed out or killed its worker is not run a second time)."""
        if self._task is None:
            return None
        self.info = await asyncio.shield(self._task)
        return self.info

    async def close(self) -> None:
        """Stop a load still under way (the task was cancelled or failed before its turn)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task


class AheadLoads:
    """The executor's loads ahead of a turn, and the wide tasks whose cores they share.

    :param spare_threads: the cluster's worker threads not taken by tasks handed to the
        scheduler.
    """

    def __init__(self, spare_threads: Callable[[], int]) -> None:
        self._spare_threads = spare_threads
        self._beside: set[asyncio.Task[Any] | None] = set()

    def starter(self, ahead: LoadAhead) -> Callable[[], None]:
        """The callback `Slots` calls as a wide task is about to be handed to the scheduler
        (in that task): start `ahead` if a worker thread is left for it besides that task."""
        def start() -> None:
            if self._spare_threads() >= 2:
                ahead.start()
                self._beside.add(asyncio.current_task())
        return start

    def shared(self) -> bool:
        """Whether the current task, a wide one now done, shared its cores with a load
        ahead (its wall time then says nothing of how it scales); forgets it."""
        task = asyncio.current_task()
        shared = task in self._beside
        self._beside.discard(task)
        return shared
