"""Which waiting prediction goes to the cluster next, and with how many native threads.

    slots = Slots(cores=lambda: 2, capacity=lambda: 4)
    async with slots.slot(Expected(seconds=3.0, scales=True)) as threads:  # waits for its turn
        ...  # hand the task to the scheduler; the predictor may use `threads` threads

What a model's earlier runs say (`Expected`: its predict time, and whether it kept the
threads it was given busy) decides its turn and its threads:
- Order: solo tasks (below) first, then the longest expected, a model never seen before
  first of all, then by arrival. At most `capacity()` tasks are in flight.
- Threads: a task gets the free cores' share (`threads_for`): all of them alone, one each
  when there are more tasks than cores.
- Solo: a long model (`SOLO_MIN_S` or more on one thread) that scales over several threads
  (`Expected.of_run`, from its runs), or never had several, runs on every free core while
  the others wait. Side by side, two such models each run slower than alone (their data
  share the cores' caches), so one after the other on every core is faster; a model that
  does not scale (pure Python, say) shows it once and runs beside the others from then on.
  A shorter model gains little, and its per-task costs (load, validation, the scheduler's
  trips) would no longer overlap another's.
- Remainder first: a round whose count is not a multiple of the cores would end on a tail,
  its last tasks on one thread each while cores stand idle, since a task's thread count is
  fixed once it starts. So the remainder goes first, wide: with 3 tasks on 2 cores, one task
  on 2 threads, then two on one each. This when the first in line was never seen, or is
  long enough for the tail to matter (`Expected.widens`).
- The others wait while a solo or wide task runs for `hold_s` at most (a solo's twice its
  expected time, and twice `hold_s` at least: a task started beside it keeps one thread to
  its end, so a hold cut short by a slow run costs more than it saves), counted from when
  its data is there (it loads while the data downloads): a model that hangs or runs long
  delays the rest of the round by that much, no more; then they take their slots beside
  it, one thread each. The next in line meanwhile loads its model on the worker left idle
  (`ahead`), so that its mostly one-threaded load does not leave the other cores idle
  after the wide task.
Solo and remainder-first apply only when the cores are one machine's (`one_machine`).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from numerai_autopilot.executor.threads import threads_for

_GATHER_S = 0.05  # a round's tasks ask turns apart: the first waits before taking every core
# A model whose predict takes less than this on one thread never runs solo.
SOLO_MIN_S = 1.5
REMAINDER_MIN_S = 1.0  # nor, known, first and wide as a round's remainder (a short tail)
WIDE_HOLD_S = 5.0
SOLO_HOLD = 2.0  # a solo task holds the others back this many times its expected time
# A predict on several threads must keep at least this share of them busy to scale, and
# take less than its one-thread time over them, by this factor (near a tie, side by side
# wins: its tasks' trips and validation overlap; their loads overlap either way, `ahead`).
SCALES_AT = 0.75
SOLO_GAIN = 1.05


@dataclass(frozen=True)
class Expected:
    """What a model's earlier runs say about its next predict: its latest wall time in
    seconds and, averaged over its runs (each new one weighs half, so that one slow run does
    not decide), its time on one thread, its threads times its wall time on several, and the
    share of those threads it kept busy (None: never measured)."""

    seconds: float
    one_thread_s: float | None = None
    wide_thread_s: float | None = None
    busy: float | None = None

    @classmethod
    def of_run(cls, seconds: float, cpu_s: float | None, threads: int,
               before: Expected | None = None, shared: bool = False) -> Expected:
        """`before` updated with a predict of `seconds` wall time and `cpu_s` CPU time (its
        process's, every thread) on `threads` native threads. `shared`: another model
        loaded on its cores meanwhile (`executor.ahead`), so its wall time on several
        threads says nothing of how it scales (the share of them it kept busy still does).

        >>> Expected.of_run(2.0, 3.8, 2).scales, Expected.of_run(2.0, 2.1, 2).scales
        (True, False)
        """
        one = before.one_thread_s if before is not None else None
        wide = before.wide_thread_s if before is not None else None
        busy = before.busy if before is not None else None
        if threads <= 1:
            one = _averaged(one, seconds)
        elif cpu_s is not None and seconds > 0:
            wide = wide if shared else _averaged(wide, threads * seconds)
            busy = _averaged(busy, cpu_s / (threads * seconds))
        return cls(seconds, one, wide, busy)

    @property
    def scales(self) -> bool | None:
        """Whether it is faster alone on several threads than side by side on one (None:
        never measured on several): there it kept them busy (`SCALES_AT`) and, if it ran on
        one thread too, its one-thread time is `SOLO_GAIN` times its threads' time or more.
        One after another on every core, such models finish sooner than side by side.

        >>> Expected(2.0, one_thread_s=3.5, wide_thread_s=4.0, busy=0.95).scales
        False
        """
        if self.wide_thread_s is None or self.busy is None:
            return None
        return self.busy >= SCALES_AT and (self.one_thread_s is None
                                           or self.one_thread_s >= SOLO_GAIN * self.wide_thread_s)

    @property
    def solo(self) -> bool:
        """Whether it runs alone on every core: long on one thread (or in its latest run,
        when never run on one), and not known not to scale."""
        return self._one_thread_s >= SOLO_MIN_S and self.scales is not False

    @property
    def widens(self) -> bool:
        """Whether, first in a round's remainder, it runs first on several cores: as long
        as `REMAINDER_MIN_S` on one thread, and not known not to scale."""
        return self._one_thread_s >= REMAINDER_MIN_S and self.scales is not False

    @property
    def _one_thread_s(self) -> float:
        return self.one_thread_s if self.one_thread_s is not None else self.seconds


def _averaged(before: float | None, new: float) -> float:
    """`new` weighing half against the runs before it."""
    return new if before is None else (before + new) / 2


class Slots:
    """The executor's queue of tasks waiting to be handed to the scheduler.

    :param cores: the cores the tasks share (called at each decision).
    :param capacity: how many tasks may be in flight at once (called at each decision).
    :param hold_s: how long wide tasks may hold the others back (`WIDE_HOLD_S`).
    :param one_machine: whether the cores are one machine's, so that one task may use them
        all (solo and remainder-first); on a cluster of several machines a task cannot.
    """

    def __init__(self, cores: Callable[[], int], capacity: Callable[[], int],
                 hold_s: float = WIDE_HOLD_S, one_machine: bool = True) -> None:
        self._cores = cores
        self._capacity = capacity
        self._hold_s = hold_s
        self._one_machine = one_machine
        self._running = 0
        self._in_use = 0  # threads held by running tasks
        self._demand = 0  # tasks running or waiting for a slot
        self._wide_running = 0  # threads held by running wide (or solo) tasks
        self._wide_left = 0  # wide tasks of the current remainder plan not started yet
        self._wide_threads = 1
        self._hold_until = 0.0  # loop time until which running wide tasks hold the others
        self._condition = asyncio.Condition()
        # waiting tasks: solo ones first, then the longest expected, then by arrival
        self._queue: list[tuple[bool, float, int]] = []
        self._aheads: dict[tuple[bool, float, int], Callable[[], None]] = {}
        self._tickets = itertools.count()
        self._notifying: set[asyncio.Future[None]] = set()

    @contextlib.asynccontextmanager
    async def slot(self, expected: Expected | None, ready: asyncio.Future[Any] | None = None,
                   ahead: Callable[[], None] | None = None) -> AsyncIterator[int]:
        """Wait for this task's turn (`expected`: its model's `Expected`, None when never
        seen); yields its native thread count. The slot is held until the block ends
        (cancelling the wait gives up the turn). `ready`: done when the task's data is
        there (it loads meanwhile); a wide task's hold on the others counts from then.
        `ahead`: called (once) when this task is next in line but a wide task starting
        holds it back: it may load its model meanwhile (`executor.ahead`)."""
        solo = self._one_machine and expected is not None and expected.solo
        seconds = expected.seconds if expected is not None else float("inf")
        ticket = (not solo, -seconds, next(self._tickets))
        self._demand += 1
        heapq.heappush(self._queue, ticket)
        if ahead is not None:
            self._aheads[ticket] = ahead
        wide = False
        try:
            await asyncio.sleep(0)  # tasks asked for in the same turn see each other
            if threads_for(self._cores(), self._demand) > 1:  # and a round's others soon after
                await asyncio.sleep(_GATHER_S)
            async with self._condition:
                await self._condition.wait_for(lambda: self._may_start(ticket))
                threads, wide = self._threads(expected, solo, ready)
                self._running += 1
                self._in_use += threads
                self._wide_running += threads if wide else 0
        except BaseException:
            self._demand -= 1
            raise
        finally:  # the next in line may go now
            self._queue.remove(ticket)
            heapq.heapify(self._queue)
            self._aheads.pop(ticket, None)
            if not self._queue:
                self._wide_left = 0
            elif wide and not self._may_start(self._queue[0]):
                self._aheads.pop(self._queue[0], lambda: None)()
            self._wake()
        try:
            yield threads
        finally:
            self._demand -= 1
            async with self._condition:
                self._running -= 1
                self._in_use -= threads
                self._wide_running -= threads if wide else 0
                self._condition.notify_all()

    def _may_start(self, ticket: tuple[bool, float, int]) -> bool:
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

    def _hold(self, seconds: float, ready: asyncio.Future[Any] | None = None) -> None:
        """Hold the others back for `seconds` from now, or from when `ready` is done (or
        until the wide tasks end)."""
        if ready is not None and not ready.done():
            self._hold_until = float("inf")
            ready.add_done_callback(lambda _: self._hold(seconds if self._wide_running else 0))
            return
        loop = asyncio.get_running_loop()
        self._hold_until = loop.time() + seconds
        loop.call_later(seconds, self._wake)  # the others' turn comes then anyway

    def _threads(self, expected: Expected | None, solo: bool,
                 ready: asyncio.Future[Any] | None) -> tuple[int, bool]:
        """The thread count of the task starting now, and whether it runs wide (the others
        wait for it, from when its data is `ready`)."""
        cores, demand = self._cores(), self._demand
        free = cores - self._in_use
        if solo and demand > 1 and free > 1:
            assert expected is not None
            self._hold(SOLO_HOLD * max(self._hold_s, expected.seconds), ready)
            return free, True
        if demand <= cores:
            return threads_for(cores, demand), False
        if self._wide_left > 0 and self._holding():
            self._wide_left -= 1
            return self._wide_threads, True
        remainder = demand % cores
        if (self._one_machine and self._running == 0 and remainder and cores // remainder > 1
                and (expected is None or expected.widens)):
            self._wide_left, self._wide_threads = remainder - 1, cores // remainder
            self._hold(self._hold_s, ready)
            return self._wide_threads, True
        return 1, False

    def _wake(self) -> None:
        notify = asyncio.ensure_future(self._notify())
        self._notifying.add(notify)
        notify.add_done_callback(self._notifying.discard)

    async def _notify(self) -> None:
        async with self._condition:
            self._condition.notify_all()
