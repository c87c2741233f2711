"""The gate a task waits at, between loading its predictor and reading the round's files.

    with DataGate(client, download) as gate:   # opens when `download` is done, however it ends
        request = replace(request, data_event=gate.name)
        ...                                      # the task loads, then waits for the gate
    # the task is over: the scheduler forgets the gate (kept if the block was cancelled)

A Dask Event (`distributed.Event`) named for one prediction: a model loads while the round's
data downloads, instead of after. The gate always opens, even when the download fails or the
prediction is cancelled, so that no worker thread waits for data that will not come.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable
from types import TracebackType
from typing import Any, Self


class DataGate:
    """Opens (sets its Event) once `ready` is done, failed or cancelled."""

    def __init__(self, client: Any, ready: Awaitable[object]) -> None:
        self.name = f"autopilot-data-{uuid.uuid4().hex}"
        self._client = client
        self.opened: asyncio.Task[float] = asyncio.ensure_future(self._open(ready))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """The prediction ended: cancelled, the gate opens and its Event stays on the
        scheduler, since a task still queued may yet ask for it; else it opens if it had
        not, and its Event is cleared (with no one waiting, the scheduler deletes it)."""
        self.opened.cancel()
        if exc_type is not None and issubclass(exc_type, asyncio.CancelledError):
            return
        closing = asyncio.ensure_future(self._clear())
        _CLOSING.add(closing)
        closing.add_done_callback(_CLOSING.discard)

    def _event(self) -> Any:
        from distributed import Event

        return Event(self.name, client=self._client)  # type: ignore[no-untyped-call]

    async def _open(self, ready: Awaitable[object]) -> float:
        """The loop time the data came (or its fetch ended), once the Event is set."""
        try:
            with contextlib.suppress(Exception):
                await asyncio.shield(ready)  # the gate closing early leaves the download be
        finally:
            # shielded: cancelled while setting, it is still set
            await asyncio.shield(self._event().set())
        return asyncio.get_running_loop().time()

    async def _clear(self) -> None:
        await asyncio.wait([self.opened])  # set first, however it ended
        with contextlib.suppress(Exception):  # the client closing: the scheduler goes too
            await self._event().clear()


_CLOSING: set[asyncio.Task[None]] = set()  # referenced until done (asyncio keeps weak ones)
