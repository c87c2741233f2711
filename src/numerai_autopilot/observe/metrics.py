"""Prometheus metrics, one `CollectorRegistry` per runtime (never the global default one, so
several apps in one process, as in tests, do not clash).

| metric | type | from |
|---|---|---|
| `autopilot_runs{state}` | gauge | the ledger, read at scrape time |
| `autopilot_last_submission_timestamp_seconds{model}` | gauge | the ledger, at scrape time |
| `autopilot_stage_duration_seconds{stage,outcome}` | histogram | each stage a run leaves |
| `autopilot_webhook_answer_seconds{status}` | histogram | the webhook route (`web/webhook.py`) |
| `autopilot_download_bytes_total`, `autopilot_downloads_total` | counter | RoundData |
| `autopilot_keep_busy_requests` | gauge | keep-busy requests the server is holding (`runs/keepbusy.py`) |

    metrics = Metrics(ledger, config, rounddata)
    text = await metrics.render()       # the /metrics body
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from numerai_autopilot.ledger import Ledger, RunState

if TYPE_CHECKING:
    from numerai_autopilot.config import AppConfig
    from numerai_autopilot.runs import RoundData

log = logging.getLogger(__name__)
_STAGE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
_ANSWER_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class _LedgerCollector(Collector):
    """Reads run counts and last submissions from the ledger when Prometheus scrapes."""

    def __init__(self, ledger: Ledger, config: AppConfig, rounddata: RoundData) -> None:
        self._ledger = ledger
        self._config = config
        self._rounddata = rounddata

    def collect(self) -> Iterator[Metric]:
        runs = GaugeMetricFamily("autopilot_runs", "Runs in the ledger by state", labels=["state"])
        last = GaugeMetricFamily(
            "autopilot_last_submission_timestamp_seconds",
            "Unix time of each model's latest submitted run",
            labels=["model"],
        )
        try:
            for state, count in self._ledger.counts_by_state().items():
                runs.add_metric([state.value], count)
            for name in self._config.models:
                latest = self._ledger.runs(limit=1, model_name=name, states=[RunState.SUBMITTED])
                if latest:
                    last.add_metric([name], latest[0].updated_at.timestamp())
        except Exception as exc:  # noqa: BLE001 - a scrape must not fail on a ledger hiccup
            log.warning("metrics: reading the ledger failed: %s", exc)
        yield runs
        yield last
        yield CounterMetricFamily(
            "autopilot_download_bytes", "Bytes of round data downloaded from Numerai",
            value=self._rounddata.bytes_downloaded,
        )
        yield CounterMetricFamily(
            "autopilot_downloads", "Round data files downloaded from Numerai",
            value=self._rounddata.downloads,
        )


class Metrics:
    """The runtime's metrics; see the module docstring."""

    def __init__(self, ledger: Ledger, config: AppConfig, rounddata: RoundData) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_LedgerCollector(ledger, config, rounddata))
        self.stage_seconds = Histogram(
            "autopilot_stage_duration_seconds", "Time runs spent in each stage",
            ["stage", "outcome"], buckets=_STAGE_BUCKETS, registry=self.registry,
        )
        self.webhook_seconds = Histogram(
            "autopilot_webhook_answer_seconds", "Time to answer Numerai's webhook",
            ["status"], buckets=_ANSWER_BUCKETS, registry=self.registry,
        )

    def watch_keep_busy(self, holding: Callable[[], int]) -> None:
        """Report `holding()` (the keep-busy requests held now) at each scrape."""
        gauge = Gauge("autopilot_keep_busy_requests",
                      "Keep-busy requests the server is holding open", registry=self.registry)
        gauge.set_function(lambda: float(holding()))

    def webhook_answered(self, status: int, seconds: float) -> None:
        """One webhook answer (its HTTP status, the seconds it took) into `webhook_seconds`."""
        self.webhook_seconds.labels(str(status)).observe(seconds)

    async def render(self) -> bytes:
        """The exposition text; the ledger is read in a thread."""
        return await asyncio.to_thread(generate_latest, self.registry)

