"""Records webhook runs in batches from the event loop: one ledger transaction per burst.

A round opening brings every model's webhook at once. Handing each to its own thread to
wait in the ledger's group commit costs a thread switch and lock hand-offs per webhook;
here the handlers just queue their run and await it, and a single flush task writes all
queued runs with `Ledger.record_many` in one transaction (one commit, one thread hop),
then answers them all. Each webhook is still answered only after its run is committed.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor

from numerai_autopilot.errors import LedgerError
from numerai_autopilot.ledger import Ledger, NewRun, Run


class BatchRecorder:
    def __init__(self, ledger: Ledger, executor: Executor | None = None) -> None:
        self._ledger = ledger
        self._executor = executor
        self._pending: list[tuple[NewRun, asyncio.Future[tuple[Run, bool]]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def record(self, new: NewRun) -> tuple[Run, bool]:
        """Record `new`; returns `(run, created)` once committed, like `Ledger.record`."""
        future: asyncio.Future[tuple[Run, bool]] = asyncio.get_running_loop().create_future()
        self._pending.append((new, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="record-flush")
        return await future

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
