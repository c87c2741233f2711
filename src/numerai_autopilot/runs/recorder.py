"""Ledger writes from the event loop, batched: what is queued together shares a transaction.

    recorder = BatchRecorder(ledger)
    run, created = await recorder.record(requested)    # a webhook's run, once committed
    advancer = BatchAdvancer(ledger)
    run = await advancer.advance(change)               # a run's state change, once committed

A round brings every model's webhook at once, and later moves all of its runs to the next
stage at once: one transaction for each such group instead of one per caller, each caller
still resuming only once its own write is committed.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Generic, TypeVar

from numerai_autopilot.errors import LedgerError
from numerai_autopilot.ledger import Change, Ledger, NewRun, Run

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """Items queued from the event loop, written by `write` in batches in `executor`'s
    threads: everything queued while a batch is written goes in the next one.

    `write` returns one result per item, or the LedgerError that item alone met; an
    exception it raises goes to every item of the batch.
    """

    def __init__(self, write: Callable[[Sequence[T]], Sequence[R | LedgerError]],
                 executor: Executor | None = None) -> None:
        self._write = write
        self._executor = executor
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        """`item`'s result once its batch is committed; raises the error it met."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._write_all())
        return await future

    async def flush(self) -> None:
        """Return once everything queued so far is written (committed, or failed and handed
        to its caller): at shutdown, before the ledger closes."""
        while self._writer is not None and not self._writer.done():
            await asyncio.wait({self._writer})

    @property
    def busy(self) -> bool:
        """Something is queued or being written."""
        return bool(self._pending) or (self._writer is not None and not self._writer.done())

    async def _write_all(self) -> None:
        while self._pending:
            await asyncio.sleep(0)  # what this turn of the loop queues joins the batch
            batch, self._pending = self._pending, []
            results: Sequence[R | Exception]
            try:
                results = await asyncio.get_running_loop().run_in_executor(
                    self._executor, self._write, [item for item, _ in batch])
            except Exception as exc:  # noqa: BLE001  (handed to every waiting caller)
                results = [exc] * len(batch)
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():  # the caller was cancelled
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)


class BatchRecorder(Batcher[NewRun, tuple[Run, bool]]):
    """`Ledger.record` from the event loop (`Ledger.record_many` per batch)."""

    def __init__(self, ledger: Ledger, executor: Executor | None = None) -> None:
        super().__init__(ledger.record_many, executor)
        self._last_queued = -math.inf  # time.monotonic() of the last run queued

    async def record(self, run: NewRun) -> tuple[Run, bool]:
        """`(run, created)` once committed; raises what `Ledger.record` raises."""
        self._last_queued = time.monotonic()
        return await self.submit(run)

    async def quiet(self, window_s: float = 0.01, longest_s: float = 0.5) -> None:
        """Return once nothing is queued or being written and no run was queued for
        `window_s`, or after `longest_s` at most (a steady stream must not hold work back).

        The dispatcher waits for this before claiming, so a burst of webhooks is answered
        before its runs' work competes with it for the event loop.
        """
        give_up = time.monotonic() + longest_s
        while (now := time.monotonic()) < give_up:
            wait = window_s if self.busy else self._last_queued + window_s - now
            if wait <= 0:
                return
            await asyncio.sleep(min(wait, give_up - now))


class BatchAdvancer(Batcher[Change, Run]):
    """`Ledger.advance` from the event loop (`Ledger.advance_many` per batch)."""

    def __init__(self, ledger: Ledger, executor: Executor | None = None) -> None:
        super().__init__(ledger.advance_many, executor)

    async def advance(self, change: Change) -> Run:
        """The run after `change`, once committed; raises what `Ledger.advance` raises."""
        return await self.submit(change)
