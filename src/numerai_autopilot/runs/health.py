"""Prediction health of a run against its model's own history: figures, band, verdict.

    check = HealthCheck(ledger, config.health)
    verdict = await check.assess(run, files, csv)       # None: nothing to judge
    verdict.suspect, verdict.reasons                    # ["corr_example 0.02 is below ..."]
    run.detail["health"] = verdict.detail()

The figures (`validation.health`) of each submitted run are kept in its detail; a model's
band is `[min, max]` of each figure over its last `health.rounds` submitted rounds of its
own predictions (rounds submitted with a fallback are left out), judged only from
`health.min_rounds` such rounds on, each figure widened by the margin of its kind
(`config.health`).

The figures of a model's own predictions are computed on its worker, beside validation
(`PredictOutcome.figures`, handed over with `offer`), off the server's event loop. The
server computes those the worker could not (a blend's, a benchmark fallback's, a cluster
that gets the round's files as bytes), from the round's shared arrays, built once per round
file (`validation.health.cached_frame`), ahead when asked (`prepare`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from numerai_autopilot.config import HealthSettings
from numerai_autopilot.ledger import Ledger, Run, RunState
from numerai_autopilot.runs.rounddata import RoundFiles

log = logging.getLogger(__name__)

# figures offered for runs never assessed (a suspect run's fallback): each keeps its CSV
_OFFERS_KEPT = 64
# Figures counted in units (rows, tickers): their margin is a fraction of the band's bounds.
_COUNTS = frozenset({"rows", "coverage"})


def margin(name: str, settings: HealthSettings, low: float, high: float) -> tuple[float, float]:
    """The bounds a figure `name` may take around its band `[low, high]` (module docstring).

    >>> margin("corr_example", HealthSettings(), 0.6, 0.7)
    (0.5, 0.7999999999999999)
    """
    if name in _COUNTS:
        return low * (1 - settings.count_margin), high * (1 + settings.count_margin)
    width = settings.corr_margin if name.startswith("corr_") or name == "exposure" \
        else settings.stat_margin
    return low - width, high + width


@dataclass(frozen=True)
class Verdict:
    """A run's figures, each one's band (`[min, max]` of the last `rounds` rounds; figures
    with too short a history have none) and why the run is suspect (empty when it is not)."""

    figures: dict[str, float]
    bands: dict[str, tuple[float, float]]
    rounds: int
    reasons: tuple[str, ...] = ()

    @property
    def suspect(self) -> bool:
        return bool(self.reasons)

    def detail(self) -> dict[str, Any]:
        """As kept in the run's detail (`health`), JSON."""
        return {"figures": self.figures, "rounds": self.rounds,
                "band": {name: list(band) for name, band in self.bands.items()},
                "suspect": list(self.reasons)}


def judge(figures: Mapping[str, float], history: Iterable[Mapping[str, float]],
          settings: HealthSettings) -> Verdict:
    """`figures` against `history` (the model's earlier runs' figures, newest first; only the
    first `settings.rounds` are used); see the module docstring."""
    past = list(history)[:settings.rounds]
    bands: dict[str, tuple[float, float]] = {}
    reasons = []
    for name, value in figures.items():
        seen = [float(h[name]) for h in past if isinstance(h.get(name), int | float)]
        if len(seen) < settings.min_rounds:
            continue
        low, high = min(seen), max(seen)
        bands[name] = (low, high)
        lowest, highest = margin(name, settings, low, high)
        if not lowest <= value <= highest:
            side = "below" if value < lowest else "above"
            reasons.append(f"{name} {_fmt(value)} is {side} its band {_fmt(low)}..{_fmt(high)} "
                           f"of the last {len(seen)} rounds (margin included: "
                           f"{_fmt(lowest)}..{_fmt(highest)})")
    return Verdict(dict(figures), bands, len(past), tuple(reasons))


def history_of(runs: Iterable[Run], exclude: str | None = None) -> list[dict[str, float]]:
    """The figures of the band's runs among `runs` (newest first): submitted, of a round,
    with the model's own predictions (no fallback), one per round (its latest)."""
    rounds: dict[int, dict[str, float]] = {}
    for run in sorted(runs, key=lambda r: r.updated_at, reverse=True):
        health = run.detail.get("health")
        if (run.id == exclude or run.state is not RunState.SUBMITTED or run.is_test
                or run.round_number is None or run.detail.get("fallback")
                or not isinstance(health, dict) or run.round_number in rounds):
            continue
        rounds[run.round_number] = dict(health.get("figures") or {})
    return [rounds[number] for number in sorted(rounds, reverse=True)]


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3f}"


class HealthCheck:
    """Judges runs (`assess`), with the figures their workers computed (`offer`) or its own."""

    def __init__(self, ledger: Ledger, settings: HealthSettings) -> None:
        self._ledger = ledger
        self._settings = settings
        # run id -> (the CSV its worker validated, that CSV's figures)
        self._offered: OrderedDict[str, tuple[bytes, dict[str, float]]] = OrderedDict()

    def offer(self, run_id: str, csv: bytes, figures: Mapping[str, float] | None) -> None:
        """The figures a worker computed for `csv`, run `run_id`'s validated submission:
        `assess` uses them when it judges that very CSV (not a fallback's made since)."""
        if figures is None:
            return
        self._offered[run_id] = (csv, dict(figures))
        self._offered.move_to_end(run_id)
        while len(self._offered) > _OFFERS_KEPT:
            self._offered.popitem(last=False)

    def prepare(self, tournament: int, files: RoundFiles) -> None:
        """Start building the round's arrays in a thread unless they are built or being
        built (`validation.health.build_ahead`): called once a run the server will judge
        itself has the round's files, so the build overlaps the predictions instead of
        delaying the first upload. Never raises; `assess` builds them if this failed."""
        from numerai_autopilot.validation.health import build_ahead

        build_ahead(files.live_path, files.benchmark_path, files.example_path, tournament)

    async def assess(self, run: Run, files: RoundFiles, csv: bytes) -> Verdict | None:
        """The verdict on `csv`, the validated submission of `run`; None for a run that is
        not judged: one a person approved, or one already using its fallback."""
        offered = self._offered.pop(run.id, None)
        if run.detail.get("approved") or run.detail.get("fallback"):
            return None
        figures = offered[1] if offered is not None and offered[0] is csv else None
        return await asyncio.to_thread(self._judge, run, files, csv, figures)

    async def settled(self, run: Run, checking: asyncio.Future[Verdict | None] | None
                      ) -> dict[str, Any]:
        """`{"health": ...}` of a verdict judged beside the upload (as kept in the run's
        detail), {} without one. Never raises: the upload happened, and a check that failed
        is only logged."""
        if checking is None:
            return {}
        try:
            verdict = await checking
        except Exception as exc:  # noqa: BLE001  the submission stands
            log.warning("run %s: its prediction health could not be judged: %s", run.id, exc)
            return {}
        return {} if verdict is None else {"health": verdict.detail()}

    def _judge(self, run: Run, files: RoundFiles, csv: bytes,
               figures: dict[str, float] | None) -> Verdict:
        """`assess`'s work, in one thread: a round's runs come back together, and each
        thread they queue for in the event loop's pool delays them all. `figures`: the
        worker's, else computed here."""
        if figures is None:
            figures = self.figures(run.tournament, files, csv)
        limit = self._settings.rounds * 3 + 5  # room for retries and test runs
        runs = self._ledger.runs(limit=limit, model_name=run.model_name,
                                 states=[RunState.SUBMITTED])
        return judge(figures, history_of(runs, exclude=run.id), self._settings)

    def figures(self, tournament: int, files: RoundFiles, csv: bytes) -> dict[str, float]:
        """`validation.health.figures` of `csv`, the round's arrays built once (blocking)."""
        from numerai_autopilot.validation.health import figures

        return figures(csv, self._frame(tournament, files))

    @staticmethod
    def _frame(tournament: int, files: RoundFiles) -> Any:
        """The round's arrays, built by the first caller (blocking)."""
        from numerai_autopilot.validation.health import cached_frame

        return cached_frame(files.live_path, files.benchmark_path, files.example_path,
                            tournament)
