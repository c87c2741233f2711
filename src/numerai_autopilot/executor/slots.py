"""Which waiting prediction goes to the cluster next, and with how many native threads.

    slots = Slots(cores=lambda: 2, capacity=lambda: 4)
    async with slots.slot(expected_s=None) as threads:   # waits for its turn
        ...  # hand the task to the scheduler; the predictor may use `threads` threads

Order: the longest expected first (earlier rounds' predict times), a model never seen before
first of all, then by arrival. At most `capacity()` tasks are in flight.

Threads: a task gets the free cores' share (`threads_for`): all of them alone, one each when
there are more tasks than cores. A round whose task count is not a multiple of the cores
would end on a tail, its last tasks running on one thread each while cores stand idle, since
a task's thread count is fixed once it starts. So when such a round starts on an idle local
cluster (`remainder_first`) and its tasks may be long (their time is unknown or at least
`WIDE_MIN_S`), the remainder goes first, wide: with 3 tasks on 2 cores, one task on 2 threads, then two on one each. The
others wait while wide tasks run (they would take the cores the wide ones were given), for
`WIDE_HOLD_S` at most: a wide model that hangs or runs long delays the rest of the round by
that much, no more; then they take their slots beside it, one thread each.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import AsyncIterator, Callable

from numerai_autopilot.executor.threads import threads_for

_GATHER_S = 0.05  # a round's tasks ask turns apart: the first waits before taking every core
# A task known to take less than this never holds the others back to run wide.
WIDE_MIN_S = 1.0
WIDE_HOLD_S = 5.0


class Slots:
    """The executor's queue of tasks waiting to be handed to the scheduler.

    :param cores: the cores the tasks share (called at each decision).
    :param capacity: how many tasks may be in flight at once (called at each decision).
    :param hold_s: how long wide tasks may hold the others back (`WIDE_HOLD_S`).
    :param remainder_first: whether a round's remainder runs first, wide (the cores are
        one machine's; on a cluster of several machines a task cannot use them all).
    """

    def __init__(self, cores: Callable[[], int], capacity: Callable[[], int],
                 hold_s: float = WIDE_HOLD_S, remainder_first: bool = True) -> None:
        self._cores = cores
        self._capacity = capacity
        self._hold_s = hold_s
        self._remainder_first = remainder_first
        self._running = 0
        self._demand = 0  # tasks running or waiting for a slot
        self._wide_running = 0  # threads held by running wide tasks
        self._wide_left = 0  # wide tasks of the current plan not started yet
        self._wide_threads = 1
        self._hold_until = 0.0  # loop time until which running wide tasks hold the others
        self._condition = asyncio.Condition()
        self._queue: list[tuple[float, int]] = []  # waiting tasks, longest expected first
        self._tickets = itertools.count()
        self._notifying: set[asyncio.Future[None]] = set()

    @contextlib.asynccontextmanager
    async def slot(self, expected_s: float | None) -> AsyncIterator[int]:
        """Wait for this task's turn; yields its native thread count. The slot is held until
        the block ends (cancelling the wait gives up the turn)."""
        ticket = (-(expected_s if expected_s is not None else float("inf")),
                  next(self._tickets))
        self._demand += 1
        heapq.heappush(self._queue, ticket)
        try:
            await asyncio.sleep(0)  # tasks asked for in the same turn see each other
            if threads_for(self._cores(), self._demand) > 1:  # and a round's others soon after
                await asyncio.sleep(_GATHER_S)
            async with self._condition:
                await self._condition.wait_for(lambda: self._may_start(ticket))
                threads, wide = self._threads(expected_s)
                self._running += 1
                self._wide_running += threads if wide else 0
        except BaseException:
            self._demand -= 1
            raise
        finally:  # the next in line may go now
            self._queue.remove(ticket)
            heapq.heapify(self._queue)
            if not self._queue:
                self._wide_left = 0
            self._wake()
        try:
            yield threads
        finally:
            self._demand -= 1
            async with self._condition:
                self._running -= 1
                self._wide_running -= threads if wide else 0
                self._condition.notify_all()

    def _may_start(self, ticket: tuple[float, int]) -> bool:
        """First in line, room in flight, and no wide task running unless this one is wide
        too and fits beside it."""
        if self._queue[0] != ticket or self._running >= self._capacity():
            return False
        if self._wide_running == 0 or not self._holding():
            return True
        return self._wide_left > 0 and self._wide_running + self._wide_threads <= self._cores()

    def _holding(self) -> bool:
        """Whether the running wide tasks still hold the others back (`hold_s`)."""
        if asyncio.get_running_loop().time() < self._hold_until:
            return True
        self._wide_left = 0
        return False

    def _threads(self, expected_s: float | None) -> tuple[int, bool]:
        """The thread count of the task starting now, and whether it runs wide (the others
        wait for it)."""
        cores, demand = self._cores(), self._demand
        if demand <= cores:
            return threads_for(cores, demand), False
        if self._wide_left > 0 and self._holding():
            self._wide_left -= 1
            return self._wide_threads, True
        remainder = demand % cores
        may_be_long = expected_s is None or expected_s >= WIDE_MIN_S
        if (self._remainder_first and self._running == 0 and remainder and may_be_long
                and cores // remainder > 1):
            self._wide_left, self._wide_threads = remainder - 1, cores // remainder
            loop = asyncio.get_running_loop()
            self._hold_until = loop.time() + self._hold_s
            loop.call_later(self._hold_s, self._wake)  # the others' turn comes then anyway
            return self._wide_threads, True
        return 1, False

    def _wake(self) -> None:
        notify = asyncio.ensure_future(self._notify())
        self._notifying.add(notify)
        notify.add_done_callback(self._notifying.discard)

    async def _notify(self) -> None:
        async with self._condition:
            self._condition.notify_all()
