"""Builds the parts of a running service from the configuration, and tears them down.

The webhook path needs only the ledger, so `open()` makes that first and quickly; the Dask
cluster (about a second to start) comes up in the background and the dispatcher starts
claiming runs once it is ready. Cold start to a healthy server stays short.

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
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from numerai_autopilot.config import AppConfig, ModelConfig
from numerai_autopilot.errors import ConfigError
from numerai_autopilot.executor import Executor, ExecutorSettings
from numerai_autopilot.executor.predictors import PredictorSpec, parse_predictor
from numerai_autopilot.ledger import Ledger, NewRun
from numerai_autopilot.numerai import NumeraiClient, RetryPolicy
from numerai_autopilot.observe.monitor import Monitor
from numerai_autopilot.runs.dispatcher import Dispatcher
from numerai_autopilot.runs.fallback import is_benchmark
from numerai_autopilot.runs.pipeline import Pipeline, Services, fallback_key
from numerai_autopilot.runs.recorder import BatchRecorder
from numerai_autopilot.runs.rounddata import Progress, RoundData
from numerai_autopilot.runs.rounddata import warm_up as warm_up_round_data
from numerai_autopilot.runs.watcher import RoundWatcher

log = logging.getLogger(__name__)
RETRY_CAP_S = 6 * 3600.0


def new_owner() -> str:
    """A name for this process in the ledger's leases: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def numerai_client(
    config: AppConfig, http: httpx.AsyncClient, retry: RetryPolicy | None = None
) -> NumeraiClient:
    """A client for the configured account; commands keep the default, short retry policy."""
    keys = config.numerai
    return NumeraiClient(
        http,
        api_url=keys.api_url,
        public_id=keys.public_id.get_secret_value() if keys.public_id else None,
        secret_key=keys.secret_key.get_secret_value() if keys.secret_key else None,
        timeout=keys.timeout,
        retry=retry or RetryPolicy(),
    )


def manual_run(
    model: ModelConfig,
    model_id: str,
    round_number: int | None,
    *,
    close_time: datetime | None = None,
    resubmit: bool | None = None,
) -> NewRun:
    """A run started by a person (`autopilot run`, the dashboard), not by Numerai's webhook:
    its own trigger id, never sent back to Numerai."""
    return NewRun(
        model_name=model.name, model_id=model_id, tournament=model.tournament_id,
        round_number=round_number, trigger_id=f"manual-{uuid.uuid4()}",
        data_version=model.data_version, is_test=False, source="manual",
        resubmit=model.resubmit if resubmit is None else resubmit, close_time=close_time,
    )


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


def _warm_up_imports() -> None:
    """What a round's first steps import: in a thread at start-up, instead of on the event
    loop between a round's webhooks and its predictions."""
    warm_up_round_data()


class Runtime:
    """The live parts of one server (or one `autopilot run`) process."""

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
        self.owner = owner or new_owner()
        self._dry_run_dir = dry_run_dir
        self._progress = progress
        self._dispatch = dispatch
        self.ledger = Ledger.from_url(config.ledger.url)
        self.http = httpx.AsyncClient(timeout=config.numerai.timeout)
        # Runs pass the round's close as their deadline; the policy's cap only has to be longer.
        self.client = numerai_client(config, self.http, RetryPolicy(deadline_s=RETRY_CAP_S))
        self.executor = Executor(
            ExecutorSettings(
                scheduler=config.executor.scheduler,
                workers=config.executor.workers,
                threads_per_worker=config.executor.threads_per_worker,
                memory_limit=str(config.executor.memory_limit),
                local_directory=config.resolve_path(config.data.cache_dir) / "dask",
                data_transfer=config.executor.data_transfer,
            )
        )
        self.models_by_id: dict[str, ModelConfig] = {
            m.model_id: m for m in config.models.values() if m.model_id
        }
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
            executor=self.executor,
            predictors=load_predictors(config),
            model_ids={m.name: i for i, m in self.models_by_id.items()},
        )
        # Alerts, stage metrics and round clocks; hooked in after the ledger commits.
        self.monitor = Monitor(config, self.ledger, self.client, self.services.rounddata)
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
        )
        self.watcher = RoundWatcher(
            config, self.ledger, self.client, self.services.model_ids, self.dispatcher.wake
        )
        self.ready = asyncio.Event()
        self._background: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Make the ledger usable now; start the executor and dispatcher in the background."""
        await asyncio.to_thread(self.ledger.migrate)
        self._background = asyncio.create_task(self._start_background(), name="runtime-start")

    async def _start_background(self) -> None:
        imports = asyncio.create_task(asyncio.to_thread(_warm_up_imports))
        await self.executor.start()
        await imports
        try:
            await self.resolve_model_ids()
        except Exception as exc:  # noqa: BLE001  (Numerai unreachable: retried on a webhook)
            log.warning("could not resolve model ids by name yet: %s", exc)
        if self._dispatch:
            self.dispatcher.start()
            self.monitor.start()
            self.watcher.start()
        self.ready.set()
        log.info("executor ready; dispatching runs as %s", self.owner)

    async def wait_ready(self) -> None:
        assert self._background is not None, "call open() first"
        await asyncio.shield(self._background)

    async def resolve_model_ids(self) -> None:
        """Fill in model ids that the config gives only by name, from the account."""
        missing = [m for m in self.config.models.values() if m.name not in self.services.model_ids]
        if not missing:
            return
        account = {m.name: m.id for m in await self.client.models(deadline=time.time() + 60)}
        for model in missing:
            model_id = account.get(model.name)
            if model_id is None:
                known = ", ".join(sorted(account)) or "none"
                raise ConfigError(
                    f"{self.config.source}: models.{model.name}: no model named {model.name!r} "
                    f"on this Numerai account (it has: {known}); set model_id or fix the name"
                )
            self.models_by_id[model_id] = model
            self.services.model_ids[model.name] = model_id

    async def model_for_id(self, model_id: str) -> ModelConfig | None:
        """The configured model with this Numerai id, or None. Models configured by name only
        are looked up on the account once more first (best effort: None if that fails)."""
        model = self.models_by_id.get(model_id)
        if model is None and len(self.services.model_ids) < len(self.config.models):
            try:
                await asyncio.wait_for(self.resolve_model_ids(), timeout=10)
            except Exception as exc:  # noqa: BLE001  (best effort: the caller answers 404)
                log.warning("resolving model ids by name failed: %s", exc)
            model = self.models_by_id.get(model_id)
        return model

    def model_id(self, name: str) -> str:
        try:
            return self.services.model_ids[name]
        except KeyError:
            raise ConfigError(f"{self.config.source}: model {name!r} has no model id yet") from None

    async def close(self) -> None:
        if self._background is not None and not self._background.done():
            self._background.cancel()
            await asyncio.gather(self._background, return_exceptions=True)
        await self.watcher.stop()
        await self.dispatcher.stop()
        await self.monitor.close()
        await self.executor.close()
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
