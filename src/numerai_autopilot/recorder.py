"""Records webhook runs in batches from the event loop: one ledger transaction per burst.

A round opening brings every model's webhook at once. Handing each to its own thread to
wait in the ledger's group commit costs a thread switch and lock hand-offs per webhook;
here the handlers just queue their run and await it, and a single flush task writes all
queued runs with `Ledger.record_many` in one transaction (one commit, one thread hop),
then answers them all. Each webhook is still answered only after its run is committed.

`quiet()` is for the dispatcher: work started while a burst is still arriving (claims, the
runs' first ledger writes and Numerai calls) competes for the one event loop and GIL with
answering the rest of the burst. Measured on a 2-core machine, 200 webhooks at once: the
last answer 409-507 ms after the first request when the first committed runs were claimed
at once, 133 ms when claims waited for the burst to go quiet. The runs lose nothing by
waiting: they all wait for the round's one download anyway.
"""

from __future__ import annotations

import asyncio
import math
from concurrent.futures import Executor

from numerai_autopilot.errors import LedgerError
from numerai_autopilot.ledger import Ledger, NewRun, Run

QUIET_WINDOW_S = 0.01
QUIET_LONGEST_S = 0.5


class BatchRecorder:
    def __init__(self, ledger: Ledger, executor: Executor | None = None) -> None:
        self._ledger = ledger
        self._executor = executor
        self._pending: list[tuple[NewRun, asyncio.Future[tuple[Run, bool]]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._last_arrival = -math.inf  # the event loop's clock

    async def record(self, new: NewRun) -> tuple[Run, bool]:
        """Record `new`; returns `(run, created)` once committed, like `Ledger.record`."""
        return await self.submit(new)

    def submit(self, new: NewRun) -> asyncio.Future[tuple[Run, bool]]:
        """Queue `new`; the future holds `(run, created)` once committed, or the error."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[Run, bool]] = loop.create_future()
        self._pending.append((new, future))
        self._last_arrival = loop.time()
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush(), name="record-flush")
        return future

    async def quiet(self, window_s: float = QUIET_WINDOW_S, longest_s: float = QUIET_LONGEST_S
                    ) -> None:
        """Return once nothing is queued or being written and no run arrived for `window_s`,
        or after `longest_s` at most (a steady stream of webhooks must not hold work back)."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + longest_s
        while True:
            now = loop.time()
            busy = self._pending or (self._flusher is not None and not self._flusher.done())
            wait = window_s if busy else self._last_arrival + window_s - now
            if wait <= 0 or now >= give_up:
                return
            await asyncio.sleep(min(wait, give_up - now))

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                results = await loop.run_in_executor(
                    self._executor, self._ledger.record_many, [new for new, _ in batch]
                )
            except Exception as exc:  # noqa: BLE001  (handed to every waiting handler)
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, LedgerError):
                    future.set_exception(result)
                else:
                    future.set_result(result)
