"""Watches runs and rounds for people: alerts, stage metrics, round summaries.

The pipeline calls `Monitor.notify` (a run failed, fell back, or was found suspect: held or
submitted anyway, with its figures and a link to its page) and `Monitor.changed` (any
state change) after the ledger has committed the change. Both return at once: the work
happens in background tasks, and nothing here can fail or slow a run (best-effort; errors
are logged). `Monitor.start()` adds a task that warns when a model has not submitted
`alerts.before_close` before its round closes; the rounds' closes come from the process's
shared `CurrentRounds`.

    monitor = Monitor(config, ledger, rounds, rounddata)
    monitor.start(); ...; await monitor.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

from numerai_autopilot.config import AppConfig, ModelConfig
from numerai_autopilot.ledger import Ledger, Run, RunState
from numerai_autopilot.observe.alerts import Alerter
from numerai_autopilot.observe.metrics import Metrics
from numerai_autopilot.runs import CurrentRounds, RoundData

log = logging.getLogger(__name__)


class Monitor:
    """Alerts and stage metrics for one runtime; see the module docstring."""

    def __init__(
        self, config: AppConfig, ledger: Ledger, rounds: CurrentRounds, rounddata: RoundData
    ) -> None:
        self._config = config
        self._ledger = ledger
        self._rounds = rounds
        settings = config.alerts
        self.alerter = Alerter(
            [url.get_secret_value() for url in settings.urls],
            secrets=_config_secrets(config),
            rate_limit=settings.rate_limit, rate_window_s=settings.rate_window,
            claim=ledger.claim_alert,
        )
        self.metrics = Metrics(ledger, config, rounddata)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._watch: asyncio.Task[None] | None = None

    async def notify(self, run: Run) -> None:
        """A run failed, used its fallback, or is suspect: alert (in the background)."""
        self._spawn(self._notify(run))

    def changed(self, before: Run, after: Run) -> None:
        """A run was advanced to `after.state`: time the stage it left, maybe summarise.

        `before` may be an older copy of the run; the ledger's stages say what just ended.
        """
        self._spawn(self._changed(after))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _notify(self, run: Run) -> None:
        try:
            where = "a test trigger" if run.is_test else f"round {run.round_number}"
            if run.state is RunState.FAILED:
                stage = await asyncio.to_thread(self._failed_stage, run)
                self.alerter.post(
                    f"failed:{run.id}:{run.attempts}", f"{run.model_name}: run failed",
                    f"Model {run.model_name}, {where}, failed while {stage}:\n{run.error}\n"
                    f"Run {run.id} (trigger {run.trigger_id}); re-run it from the dashboard.",
                )
            elif run.detail.get("fallback"):
                self.alerter.post(
                    f"fallback:{run.id}:{run.attempts}", f"{run.model_name}: using its fallback",
                    f"Model {run.model_name}, {where}: {run.detail.get('primary_error')}; "
                    f"submitting {run.detail['fallback']} instead.{_figures(run)}",
                )
            elif run.state is RunState.HELD:
                self.alerter.post(
                    f"held:{run.id}", f"{run.model_name}: suspect run held, not submitted",
                    f"Model {run.model_name}, {where}: its predictions left the model's band, "
                    f"so the run is held and nothing was uploaded. Submit it (or its fallback) "
                    f"before the round closes: {self._link(run)}{_figures(run)}",
                )
            elif run.detail.get("health", {}).get("suspect"):
                self.alerter.post(
                    f"suspect:{run.id}:{run.attempts}", f"{run.model_name}: suspect predictions",
                    f"Model {run.model_name}, {where}: its predictions left the model's band; "
                    f"they were submitted anyway (on_suspect = \"warn\"). Run: "
                    f"{self._link(run)}{_figures(run)}",
                )
        except Exception:
            log.exception("alerting on run %s failed (ignored)", run.id)

    def _link(self, run: Run) -> str:
        """The run's dashboard page: a full URL with `server.public_url`, else its path."""
        base = (self._config.server.public_url or "").rstrip("/")
        return f"{base}/runs/{run.id}"

    def _failed_stage(self, run: Run) -> str:
        stages = self._ledger.stages(run.id)
        ended = [s for s in stages if s.outcome == RunState.FAILED.value]
        return ended[-1].state.value if ended else (stages[-1].state.value if stages else "queued")

    async def _changed(self, after: Run) -> None:
        try:
            stages = await asyncio.to_thread(self._ledger.stages, after.id)
            # The stage this advance closed ended at the same instant the run was updated.
            for stage in stages:
                if stage.ended_at == after.updated_at and stage.duration_s is not None:
                    self.metrics.stage_seconds.labels(
                        stage.state.value, stage.outcome or after.state.value
                    ).observe(stage.duration_s)
            if (after.state.is_final and not after.is_test and not after.is_dry_run
                    and after.round_number is not None):
                await self._maybe_summarise(after.tournament, after.round_number)
        except Exception:
            log.exception("recording run %s's change failed (ignored)", after.id)

    def _models(self, tournament: int) -> list[ModelConfig]:
        return [m for m in self._config.models.values() if m.tournament_id == tournament]

    async def _maybe_summarise(self, tournament: int, number: int) -> None:
        if not self._config.alerts.round_summary or not self.alerter.enabled:
            return
        runs = await asyncio.to_thread(self._ledger.runs, limit=1000, round_number=number)
        latest: dict[str, Run] = {}  # each model's run: its submission, else its latest
        for run in sorted(runs, key=lambda r: r.created_at):
            kept = latest.get(run.model_name)
            if run.tournament == tournament and not run.is_test and not run.is_dry_run and (
                    kept is None or kept.state is not RunState.SUBMITTED):
                latest[run.model_name] = run
        models = self._models(tournament)
        if not models or any(m.name not in latest or not latest[m.name].is_final for m in models):
            return
        lines = [_summary_line(latest[m.name]) for m in models]
        ok = sum(latest[m.name].state is RunState.SUBMITTED for m in models)
        self.alerter.post(
            f"summary:{tournament}:{number}", f"round {number}: {ok}/{len(models)} submitted",
            f"Round {number} (tournament {tournament}):\n" + "\n".join(lines),
        )

    def start(self) -> None:
        """Start the before-close watch (when alerts are configured and it is enabled)."""
        if self.alerter.enabled and self._config.alerts.before_close > 0 and self._watch is None:
            self._watch = asyncio.get_running_loop().create_task(self._watch_loop(), name="close-watch")

    async def _watch_loop(self) -> None:
        while True:
            try:
                await self.check_closing()
            except Exception:
                log.exception("checking for models not yet submitted failed")
            await asyncio.sleep(self._config.alerts.check_interval)

    async def check_closing(self, now: datetime | None = None) -> None:
        """Alert for every model not submitted within `before_close` of its round's close."""
        now = now or datetime.now(UTC)
        window = timedelta(seconds=self._config.alerts.before_close)
        for tournament in sorted({m.tournament_id for m in self._config.models.values()}):
            info = await self._rounds.latest(tournament)
            if info is None or info.close_time is None or not (
                    info.close_time - window <= now < info.close_time):
                continue
            runs = await asyncio.to_thread(self._ledger.runs, limit=1000, round_number=info.number)
            for model in self._models(tournament):
                mine = [r for r in runs if r.model_name == model.name and not r.is_test
                        and r.tournament == tournament]
                if any(r.state is RunState.SUBMITTED for r in mine):
                    continue
                minutes = int((info.close_time - now).total_seconds() // 60)
                state = _latest_state(mine)
                self.alerter.post(
                    f"closing:{model.name}:{tournament}:{info.number}",
                    f"{model.name}: not submitted, round {info.number} closes in {minutes} min",
                    f"Model {model.name} has not submitted for round {info.number} "
                    f"(closes {info.close_time:%Y-%m-%d %H:%M} UTC, in {minutes} min). {state}",
                )

    async def close(self, timeout: float = 10.0) -> None:
        """Stop watching; wait up to `timeout` seconds in all for the alerts and summaries
        in flight (what is left then is dropped: best effort)."""
        loop = asyncio.get_running_loop()
        until = loop.time() + timeout
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=max(until - loop.time(), 0.0) / 2)
        await self.alerter.drain(timeout=max(until - loop.time(), 0.0))


def _config_secrets(config: AppConfig) -> list[str]:
    from numerai_autopilot.config.tokens import webhook_token

    values = [config.numerai.public_id, config.numerai.secret_key, config.server.secret,
              config.server.admin_token, config.server.dashboard_password,
              config.server.dashboard_password_hash, *config.server.previous_secrets]
    secrets = [v.get_secret_value() for v in values if v is not None]
    if config.server.secret is not None:
        secret = config.server.secret.get_secret_value()
        secrets += [webhook_token(secret, m.model_id) for m in config.models.values() if m.model_id]
    return secrets


def _figures(run: Run) -> str:
    """The run's prediction health as alert lines: the figures out of band first."""
    health = run.detail.get("health")
    if not isinstance(health, dict) or not health.get("figures"):
        return ""
    bands = health.get("band") or {}
    lines = [f"- {reason}" for reason in health.get("suspect") or []]
    for name, value in health["figures"].items():
        band = bands.get(name)
        within = f" (band {band[0]:.4g}..{band[1]:.4g})" if band else ""
        lines.append(f"  {name} {value:.4g}{within}")
    return "\n\nPrediction health:\n" + "\n".join(lines)


def _summary_line(run: Run) -> str:
    if run.state is RunState.SUBMITTED:
        took = (run.updated_at - run.created_at).total_seconds()
        fallback = f" with fallback {run.detail['fallback']}" if run.detail.get("fallback") else ""
        return f"- {run.model_name}: submitted{fallback} in {took:.0f} s"
    return f"- {run.model_name}: {run.state.value}: {run.error or ''}".rstrip(": ")


def _latest_state(runs: list[Run]) -> str:
    if not runs:
        return "No run was recorded: check that its webhook is registered."
    run = max(runs, key=lambda r: r.created_at)
    error = f": {run.error}" if run.error else ""
    return f"Its latest run is {run.state.value}{error} (run {run.id})."
