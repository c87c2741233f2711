"""Builds the parts of a running service from the configuration, and tears them down.

The composition root: every part gets what it uses from here, and the parts several others
share are made once (the ledger, the Numerai client, the current-round cache `rounds`, the
model ids `model_ids`). The webhook path needs only the ledger, so `open()` makes that
first; the Dask cluster comes up in the background and the dispatcher starts claiming runs
once it is ready, so a server answers webhooks before its executor is up.

    async with Runtime(config) as runtime:   # ledger, client, data cache, executor, dispatcher
        ...
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from numerai_autopilot.config import AppConfig
from numerai_autopilot.errors import ConfigError
from numerai_autopilot.executor import Executor
from numerai_autopilot.executor.predictors import PredictorSpec, parse_predictor
from numerai_autopilot.ledger import Ledger
from numerai_autopilot.numerai import NumeraiClient, RetryPolicy
from numerai_autopilot.observe import Monitor
from numerai_autopilot.runs import (
    BatchRecorder,
    CurrentRounds,
    Dispatcher,
    ModelIds,
    Pipeline,
    Progress,
    RoundData,
    RoundWatcher,
    Services,
    fallback_key,
    is_benchmark,
    warm_up_round_data,
)

log = logging.getLogger(__name__)
RETRY_CAP_S = 6 * 3600.0


def lease_owner() -> str:
    """A name for this process in the ledger's leases: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def load_predictors(config: AppConfig) -> dict[str, PredictorSpec]:
    """Parse every model's predictor reference; one error lists every bad model."""
    specs: dict[str, PredictorSpec] = {}
    problems: list[str] = []
    for name, model in config.models.items():
        try:
            specs[name] = parse_predictor(model.predictor, base_dir=config.base_dir)
        except ConfigError as exc:
            problems.append(f"{config.source}: models.{name}.predictor: {exc}")
        if model.fallback is not None and not is_benchmark(model.fallback):
            try:
                specs[fallback_key(name)] = parse_predictor(model.fallback, base_dir=config.base_dir)
            except ConfigError as exc:
                problems.append(f"{config.source}: models.{name}.fallback: {exc}")
    if problems:
        raise ConfigError("\n".join(problems))
    return specs


class Runtime:
    """The live parts of one server (or one `autopilot run`) process.

    `owner` names the process in the ledger's leases; `dry_run_dir` makes runs write their
    validated CSVs there instead of uploading; `progress` reports round data downloads;
    `dispatch=False` (for `autopilot run`, which drives its one run itself) starts no
    dispatcher, monitor or watcher. Raises ConfigError when a predictor reference is bad.
    """

    def __init__(
        self,
        config: AppConfig,
        *,
        owner: str | None = None,
        dry_run_dir: Path | None = None,
        progress: Progress | None = None,
        dispatch: bool = True,
    ) -> None:
        self.config = config
        self.owner = owner or lease_owner()
        self._dispatch = dispatch
        self.ledger = Ledger.from_url(config.ledger.url)
        self.http = httpx.AsyncClient(timeout=config.numerai.timeout)
        # Runs pass the round's close as their deadline; the policy's cap only has to be longer.
        self.client = NumeraiClient.from_settings(
            self.http, config.numerai, RetryPolicy(deadline_s=RETRY_CAP_S))
        self.executor = Executor(
            config.executor,
            local_directory=config.resolve_path(config.data.cache_dir) / "dask",
        )
        self.model_ids = ModelIds(config.models, config.source)
        self.rounds = CurrentRounds(self.client)
        self.services = Services(
            config=config,
            ledger=self.ledger,
            client=self.client,
            rounddata=RoundData(
                self.client,
                config.resolve_path(config.data.cache_dir),
                keep_rounds=config.data.keep_rounds,
                progress=progress,
            ),
            rounds=self.rounds,
            executor=self.executor,
            predictors=load_predictors(config),
        )
        # Alerts, stage metrics and round summaries; hooked in after the ledger commits.
        self.monitor = Monitor(config, self.ledger, self.rounds, self.services.rounddata)
        self.metrics = self.monitor.metrics
        self.services.notify = self.monitor.notify
        self.services.on_change = self.monitor.changed
        self.pipeline = Pipeline(self.services, self.owner, dry_run_dir=dry_run_dir)
        # The webhook's own thread for recording runs: a round's pipeline work (ledger
        # writes, validation) must not make webhooks wait for a free thread.
        self.record_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="record")
        self.recorder = BatchRecorder(self.ledger, self.record_pool)
        self.dispatcher = Dispatcher(
            self.ledger, self.pipeline, self.owner,
            max_concurrent=config.server.max_concurrent_runs,
            lease_s=config.server.run_lease,
            quiet=self.recorder.quiet,
        )
        self.watcher = RoundWatcher(
            self.ledger, self.rounds, self.model_ids, self.dispatcher.wake,
            after=config.server.watch_after, interval=config.server.watch_interval,
        )
        self.ready = asyncio.Event()
        self._background: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Make the ledger usable now; start the executor and dispatcher in the background."""
        await asyncio.to_thread(self.ledger.migrate)
        self._background = asyncio.create_task(self._start_background(), name="runtime-start")

    async def _start_background(self) -> None:
        # a round's first imports load in a thread now, not on the loop between its webhooks
        imports = asyncio.create_task(asyncio.to_thread(warm_up_round_data))
        await self.executor.start()
        await imports
        try:
            await self.model_ids.resolve(self.client, deadline=time.time() + 60)
        except Exception as exc:  # noqa: BLE001  (Numerai unreachable: retried on a webhook)
            log.warning("could not resolve model ids by name yet: %s", exc)
        if self._dispatch:
            self.dispatcher.start()
            self.monitor.start()
            self.watcher.start()
        self.ready.set()
        log.info("executor ready; dispatching runs as %s", self.owner)

    async def wait_ready(self) -> None:
        """Wait until the executor is up (raises what starting it raised)."""
        assert self._background is not None, "call open() first"
        await asyncio.shield(self._background)

    async def close(self) -> None:
        """Stop what `open` started, the run tasks first, the ledger last."""
        if self._background is not None and not self._background.done():
            self._background.cancel()
            await asyncio.gather(self._background, return_exceptions=True)
        await self.watcher.stop()
        await self.dispatcher.stop()
        await self.monitor.close()
        await self.executor.close()
        await self.rounds.close()
        await self.http.aclose()
        self.record_pool.shutdown(wait=True)
        self.ledger.close()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
