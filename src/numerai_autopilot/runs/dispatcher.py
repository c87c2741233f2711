"""Claims queued runs from the ledger and executes them, a bounded number at a time.

Woken at once by the webhook handler; also polls, so runs recorded by another instance or
left behind by a crashed one (their lease expired) are picked up. While a run executes its
lease is renewed, so no other instance claims it. Stopping leaves every run resumable: the
runs in flight are cancelled where they are, their state changes already made committed,
their leases released, so the next process takes them over at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from numerai_autopilot.ledger import Ledger, Run
from numerai_autopilot.runs.pipeline import Pipeline

log = logging.getLogger(__name__)
# At stop, how long a claim in flight may take to end before it is cancelled.
_STOP_CLAIM_WAIT_S = 2.0


class Dispatcher:
    """Claims runs as `owner` under leases of `lease_s` seconds and executes them through
    `pipeline`, at most `max_concurrent` at a time, looking for work every `poll_s`.

    With `quiet` (the webhook recorder's), a claim first waits for the webhooks to go quiet,
    so a burst is answered before its runs' work competes with it for the event loop.
    `on_work` is called whenever there may be work: on `wake` and when runs are claimed
    (the keep-busy's `poke`); it must return at once.
    """

    def __init__(
        self,
        ledger: Ledger,
        pipeline: Pipeline,
        owner: str,
        *,
        max_concurrent: int = 32,
        lease_s: float = 60.0,
        poll_s: float = 1.0,
        quiet: Callable[[], Awaitable[None]] | None = None,
        on_work: Callable[[], None] | None = None,
    ) -> None:
        self._ledger = ledger
        self._pipeline = pipeline
        self._owner = owner
        self._max = max_concurrent
        self._lease_s = lease_s
        self._poll_s = poll_s
        self._quiet = quiet
        self._on_work = on_work
        self._stopping = False
        self._wake = asyncio.Event()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._loop_task: asyncio.Task[None] | None = None

    @property
    def active(self) -> int:
        return len(self._running)

    def wake(self) -> None:
        """Look for work now (a webhook was just recorded); wakes that come while a claim is
        made are served by the next one."""
        self._wake.set()
        if self._on_work is not None and not self._stopping:
            self._on_work()

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._loop(), name="dispatcher")

    def stop_claiming(self) -> None:
        """Claim no more runs; runs in flight go on until `stop`. Synchronous and
        idempotent: called at SIGTERM itself."""
        self._stopping = True
        self._wake.set()

    async def stop(self) -> None:
        """Leave every run resumable, in this order: stop claiming (a claim in flight ends,
        and what it took is given back); cancel the runs in flight where they are; commit
        the state changes they already made (`Pipeline.flush`); release their leases, so
        another instance or the next start resumes them without waiting for the leases to
        expire."""
        self.stop_claiming()
        if self._loop_task is not None and not self._loop_task.done():
            done, _ = await asyncio.wait({self._loop_task}, timeout=_STOP_CLAIM_WAIT_S)
            if not done:  # a claim stuck on the ledger: what it takes expires
                self._loop_task.cancel()
                await asyncio.gather(self._loop_task, return_exceptions=True)
        held = list(self._running)
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._pipeline.flush()
        if held:
            await asyncio.to_thread(self._release, held)
            log.info("stopped %d run(s) in flight and released them for resuming: %s",
                     len(held), ", ".join(held))

    def _release(self, run_ids: list[str]) -> None:
        for run_id in run_ids:
            try:
                self._ledger.release(run_id, self._owner)
            except Exception as exc:  # noqa: BLE001  (its lease expires instead)
                log.warning("releasing run %s failed (%s); it resumes once its lease expires",
                            run_id, exc)

    async def _loop(self) -> None:
        while not self._stopping:
            try:
                await self._claim_and_start()
            except Exception:  # a ledger hiccup must not stop the dispatcher
                log.exception("claiming runs failed; retrying in %.0f s", self._poll_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll_s)
            self._wake.clear()

    async def _claim_and_start(self) -> None:
        if self._quiet is not None:
            await self._quiet()
        while not self._stopping and (free := self._max - len(self._running)) > 0:
            if await self._claim(free) < free:
                return

    async def _claim(self, limit: int) -> int:
        runs = await asyncio.to_thread(
            self._ledger.claim, self._owner, lease_s=self._lease_s, limit=limit
        )
        if self._stopping:  # stopped while claiming: give them back now
            if runs:
                await asyncio.to_thread(self._release, [run.id for run in runs])
            return 0
        for run in runs:
            self._running[run.id] = asyncio.create_task(self._execute(run), name=f"run-{run.id}")
        if runs and self._on_work is not None:
            self._on_work()
        return len(runs)

    async def _execute(self, run: Run) -> None:
        renewer = asyncio.create_task(self._renew(run.id))
        try:
            await self._pipeline.execute(run)
        except Exception:
            # The pipeline records every expected failure; this is a bug. The lease expires
            # and the run is claimed again, so nothing accepted is dropped.
            log.exception("run %s crashed the pipeline; it will be resumed", run.id)
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            self._running.pop(run.id, None)
            self._wake.set()  # a slot is free, and a retried run may be queued again

    async def _renew(self, run_id: str) -> None:
        while True:
            await asyncio.sleep(self._lease_s / 3)
            try:
                await asyncio.to_thread(self._ledger.renew, run_id, self._owner, self._lease_s)
            except Exception:
                log.exception("renewing the lease of run %s failed", run_id)
