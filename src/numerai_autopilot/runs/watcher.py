"""The round watcher: a run for every model, even when Numerai's webhook never comes.

Every `interval` seconds it reads the current round of each tournament with watched models
(from the process's shared `CurrentRounds`, at most one poll old). Once a round has been
open for `after` seconds and a model (with `watch = true`, the default, and a known id) has
no run for it, the watcher records one (source "watcher"), unless the round has closed and
the model does not submit late. Recording goes through `Ledger.record_if_absent_for_round`,
atomically, with a trigger id derived from the round, so it never duplicates a webhook's
run (one whose body did not say the round included), nor another instance's watcher run.
Each poll also fails the held runs whose round has closed (`held.expire_held`); a held
run is its round's run, so the watcher starts no second one beside it.

    watcher = RoundWatcher(ledger, rounds, model_ids, dispatcher.wake, after=600, interval=60)
    watcher.start(); ...; await watcher.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from numerai_autopilot.config import ModelConfig
from numerai_autopilot.errors import AutopilotError
from numerai_autopilot.ledger import Ledger, Run
from numerai_autopilot.runs.held import expire_held
from numerai_autopilot.runs.model_ids import ModelIds, new_run
from numerai_autopilot.runs.rounds import CurrentRounds

log = logging.getLogger(__name__)


class RoundWatcher:
    """Starts the runs of watched models that no webhook started; see the module docstring.

    `wake` is called after a poll that recorded runs (the dispatcher's).
    """

    def __init__(
        self,
        ledger: Ledger,
        rounds: CurrentRounds,
        model_ids: ModelIds,
        wake: Callable[[], None],
        *,
        after: float,
        interval: float,
    ) -> None:
        self._ledger = ledger
        self._rounds = rounds
        self._model_ids = model_ids
        self._wake = wake
        self._after = after
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="round-watcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            try:
                await self.check()
                await asyncio.to_thread(expire_held, self._ledger, time.time())
            except Exception:  # the watcher must outlive any one bad poll
                log.exception("round watcher: check failed; trying again later")
            await asyncio.sleep(self._interval)

    async def check(self) -> list[Run]:
        """One poll: record runs for watched models missing from open rounds; return them."""
        watched: dict[int, list[ModelConfig]] = {}
        for model in self._model_ids.models.values():
            if model.watch and self._model_ids.get(model.name) is not None:
                watched.setdefault(model.tournament_id, []).append(model)
        started: list[Run] = []
        for tournament, models in watched.items():
            try:
                info = await self._rounds.get(tournament, max_age=self._interval,
                                              wait=self._interval)
            except AutopilotError as exc:  # closed round, Numerai down: nothing to start now
                log.info("round watcher: no open round for tournament %s (%s)", tournament, exc)
                continue
            now = time.time()
            if info.open_time is None or now < info.open_time.timestamp() + self._after:
                continue
            for model in models:
                if info.close_time is not None and now >= info.close_time.timestamp() \
                        and not model.late_submissions:
                    continue
                run, created = await asyncio.to_thread(
                    self._ledger.record_if_absent_for_round,
                    new_run(model, self._model_ids.id_of(model.name), source="watcher",
                            round_number=info.number, close_time=info.close_time),
                )
                if created:
                    log.warning("round watcher: no webhook for %s in round %s after %.0f s; "
                                "started run %s", model.name, info.number, self._after, run.id)
                    started.append(run)
        if started:
            self._wake()
        return started
