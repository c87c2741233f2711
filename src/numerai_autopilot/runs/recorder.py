"""Ledger writes from the event loop in batches: one transaction for what comes together.

`BatchRecorder` records webhook runs, `BatchAdvancer` makes runs' state changes.

A round opening brings every model's webhook at once. Handing each to its own thread to
wait in the ledger's group commit costs a thread switch and lock hand-offs per webhook;
here the handlers just queue their run and await it, and a single flush task writes all
queued runs with `Ledger.record_many` in one transaction (one commit, one thread hop),
then answers them all. Each webhook is still answered only after its run is committed.

A burst arrives over a few milliseconds, not at once: the recorder lets it in before
writing (`gather_gap_s`). Taking the first webhook at once made a batch of one, then a
batch of the rest written while the event loop answered the first: on a 2-core machine, 200
webhooks at once were recorded in two or three transactions, each slowed by the other's
answers competing for the GIL. Traced, the last answer came 23-25 ms after the first
request was read; with one transaction once the burst is in, 16-18 ms.

`quiet()` is for the dispatcher: work started while a burst is still arriving (claims, the
runs' first ledger writes and Numerai calls) competes for the one event loop and GIL with
answering the rest of the burst. Measured on a 2-core machine, 200 webhooks at once: the
last answer 409-507 ms after the first request when the first committed runs were claimed
at once, 133 ms when claims waited for the burst to go quiet. The runs lose nothing by
waiting: they all wait for the round's one download anyway.

State changes come together too: when a round's data is ready, every run of the round
enters `predicting` in the same turn of the loop. One by one, each change was a thread hop
and a transaction queued behind the others' (20 runs: the last one entered its stage
~55 ms after the first, before its task could be handed to a worker).
"""

from __future__ import annotations

import asyncio
import gc
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Generic, TypeVar

from numerai_autopilot.errors import LedgerError
from numerai_autopilot.ledger import Change, Ledger, NewRun, Run

QUIET_WINDOW_S = 0.01
QUIET_LONGEST_S = 0.5
# A batch is written once no webhook (or connection) arrived for GATHER_GAP_S (a burst's
# arrive tens of microseconds apart), or GATHER_LONGEST_S after it was due (a steady stream
# is not held for longer). Reading a burst of 200 took 6-25 ms on a 2-core machine, more in
# its slow spells: a 10 ms bound cut such bursts in two (180 + 20, 158 + 42), and the second
# batch then waited for the first one's record and answers (36-62 ms in all).
GATHER_GAP_S = 0.001
GATHER_LONGEST_S = 0.05

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """Items queued from the event loop, written by `write` in batches in `executor`'s
    threads: all that was queued when the last batch finished goes in the next. `write`
    returns one result per item, or the LedgerError that item alone met; an exception it
    raises goes to every item of the batch."""

    def __init__(self, write: Callable[[Sequence[T]], Sequence[R | LedgerError]],
                 executor: Executor | None, name: str) -> None:
        self._write = write
        self._executor = executor
        self._name = name
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._flusher: asyncio.Task[None] | None = None

    def submit(self, item: T) -> asyncio.Future[R]:
        """Queue `item`; the future holds its result once committed, or the error."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush(), name=self._name)
        return future

    @property
    def busy(self) -> bool:
        """Something is queued or being written."""
        return bool(self._pending) or (self._flusher is not None and not self._flusher.done())

    async def _flush(self) -> None:
        while self._pending:
            try:
                await self._gather()
                await self._write_batch()
            finally:
                self._batch_done()

    async def _write_batch(self) -> None:
        batch, self._pending = self._pending, []
        try:
            results = await asyncio.get_running_loop().run_in_executor(
                self._executor, self._write, [item for item, _ in batch]
            )
        except Exception as exc:  # noqa: BLE001  (handed to every waiting caller)
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, LedgerError):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def _gather(self) -> None:
        """Before each batch: wait for what belongs in it (nothing by default)."""

    def _batch_done(self) -> None:
        """After each batch, its callers' results set (or the flush cancelled)."""


class BatchRecorder(Batcher[NewRun, tuple[Run, bool]]):
    def __init__(self, ledger: Ledger, executor: Executor | None = None, *,
                 gather_gap_s: float = GATHER_GAP_S,
                 gather_longest_s: float = GATHER_LONGEST_S) -> None:
        super().__init__(ledger.record_many, executor, "record-flush")
        self._gap = gather_gap_s
        self._longest = gather_longest_s
        self._arrived = -math.inf  # perf_counter: the loop's clock has 1 ms steps on uvloop
        self._holding_gc = False

    async def _gather(self) -> None:
        """Let a burst in: return once no webhook arrived for `gather_gap_s`, or after
        `gather_longest_s`. Turns of the loop, not a timer (uvloop's are whole
        milliseconds): each turn still reads the sockets, so the burst's webhooks keep
        arriving while this waits.

        From here until the batch's callers have their results, the garbage collector
        waits (`gc.disable`, unless it was off already): a full collection in the middle of
        a burst took 4-16 ms, and the younger ones ~1-2 ms in all, on a batch written in
        ~9 ms. A batch is bounded (`gather_longest_s`, then one transaction), and the
        collector runs as usual after it, so a steady stream of webhooks does not hold it
        off for long."""
        if gc.isenabled():
            gc.disable()
            self._holding_gc = True
        give_up = time.perf_counter() + self._longest
        polled = False  # a turn that read the sockets came after the gap had passed
        while True:
            now = time.perf_counter()
            if now >= give_up:
                return
            if now - self._arrived < self._gap:
                polled = False
            elif polled:
                return
            else:
                # Trust the gap only after one more turn: the loop runs a turn's callbacks
                # (this check) before it reads the sockets, so after a stall of the process
                # the gap has passed with the rest of the burst unread in the kernel.
                polled = True
            await asyncio.sleep(0)

    def _batch_done(self) -> None:
        if not self._holding_gc:
            return
        self._holding_gc = False
        task = asyncio.current_task()
        if task is not None and task.cancelling():  # the loop may stop before a callback
            gc.enable()
        else:  # after the callbacks the results just scheduled (the answers): they run first
            asyncio.get_running_loop().call_soon(gc.enable)

    async def record(self, new: NewRun) -> tuple[Run, bool]:
        """Record `new`; returns `(run, created)` once committed, like `Ledger.record`."""
        return await self.submit(new)

    def submit(self, new: NewRun) -> asyncio.Future[tuple[Run, bool]]:
        """Queue `new`; the future holds `(run, created)` once committed, or the error."""
        self._arrived = time.perf_counter()
        return super().submit(new)

    def expect(self) -> None:
        """A connection was accepted: a webhook may be on its way. Counts as an arrival for
        the gathering (and `quiet()`): a connection accepted after a stall brings its
        request a turn or two later."""
        self._arrived = time.perf_counter()

    async def quiet(self, window_s: float = QUIET_WINDOW_S, longest_s: float = QUIET_LONGEST_S
                    ) -> None:
        """Return once nothing is queued or being written and no run arrived for `window_s`,
        or after `longest_s` at most (a steady stream of webhooks must not hold work back)."""
        give_up = time.perf_counter() + longest_s
        while True:
            now = time.perf_counter()
            wait = window_s if self.busy else self._arrived + window_s - now
            if wait <= 0 or now >= give_up:
                return
            await asyncio.sleep(min(wait, give_up - now))


class BatchAdvancer(Batcher[Change, Run]):
    """`Ledger.advance` from the event loop: the changes queued together share a transaction
    (`Ledger.advance_many`); each caller still resumes only once its change is committed."""

    def __init__(self, ledger: Ledger, executor: Executor | None = None) -> None:
        super().__init__(ledger.advance_many, executor, "advance-flush")

    async def advance(self, change: Change) -> Run:
        """The run after `change`, once committed; raises what `Ledger.advance` raises."""
        return await self.submit(change)
