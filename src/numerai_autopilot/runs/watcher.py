"""The round watcher: a run for every model, even when Numerai's webhook never comes.

It polls Numerai's current round of each tournament with watched models. Once a round has
been open for `server.watch_after` and a model (with `watch = true`, the default) has no run
for it, the watcher records one (source "watcher"). Recording goes through
`Ledger.record_if_absent_for_round`, atomically, with a trigger id derived from the round, so
it never duplicates a webhook's run, nor another instance's watcher run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from numerai_autopilot.config import AppConfig, ModelConfig
from numerai_autopilot.errors import AutopilotError
from numerai_autopilot.ledger import Ledger, NewRun, Run
from numerai_autopilot.numerai import NumeraiClient

log = logging.getLogger(__name__)


class RoundWatcher:
    def __init__(
        self,
        config: AppConfig,
        ledger: Ledger,
        client: NumeraiClient,
        model_ids: dict[str, str],
        wake: Callable[[], None],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._ledger = ledger
        self._client = client
        self._model_ids = model_ids
        self._wake = wake
        self._clock = clock
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
            except Exception:  # the watcher must outlive any one bad poll
                log.exception("round watcher: check failed; trying again later")
            await asyncio.sleep(self._config.server.watch_interval)

    async def check(self) -> list[Run]:
        """One poll: record runs for watched models missing from open rounds; return them."""
        watched: dict[int, list[ModelConfig]] = {}
        for model in self._config.models.values():
            if model.watch and model.name in self._model_ids:
                watched.setdefault(model.tournament_id, []).append(model)
        started: list[Run] = []
        for tournament, models in watched.items():
            try:
                info = await self._client.current_round(
                    tournament=tournament,
                    deadline=self._clock() + self._config.server.watch_interval,
                )
            except AutopilotError as exc:  # closed round, Numerai down: nothing to start now
                log.info("round watcher: no open round for tournament %s (%s)", tournament, exc)
                continue
            now = self._clock()
            if info.open_time is None or now < info.open_time.timestamp() + self._config.server.watch_after:
                continue
            for model in models:
                if info.close_time is not None and now >= info.close_time.timestamp() \
                        and not model.late_submissions:
                    continue
                run, created = await asyncio.to_thread(
                    self._ledger.record_if_absent_for_round,
                    NewRun(
                        model_name=model.name, model_id=self._model_ids[model.name],
                        tournament=tournament, round_number=info.number,
                        trigger_id=f"watcher-round-{info.number}", data_version=model.data_version,
                        is_test=False, source="watcher", resubmit=model.resubmit,
                        close_time=info.close_time,
                    ),
                )
                if created:
                    log.warning("round watcher: no webhook for %s in round %s after %.0f s; "
                                "started run %s", model.name, info.number,
                                self._config.server.watch_after, run.id)
                    started.append(run)
        if started:
            self._wake()
        return started
