"""What the pages show of prediction health, as plain values (no I/O): a run's figures
against its band, and each figure's chart over a model's last rounds (drawn as SVG by
the templates: no JavaScript).

    health_rows(run)          # [FigureRow("corr_example", 0.02, 0.61, 0.70, 0.51, 0.80, True), ...]
    health_charts(runs, config.health)     # [Chart("corr_example", points, band, ...), ...]
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from numerai_autopilot.config import HealthSettings
from numerai_autopilot.ledger import Run
from numerai_autopilot.runs.health import margin

WIDTH, HEIGHT, PAD = 260, 70, 6


def is_suspect(run: Run) -> bool:
    """Whether the run's figures left its model's band."""
    return bool(_health(run).get("suspect"))


@dataclass(frozen=True)
class FigureRow:
    """One figure of a run: its value, its band (None before the band has enough rounds),
    the bounds with the margin, and whether it is outside them."""

    name: str
    value: float
    low: float | None
    high: float | None
    lowest: float | None
    highest: float | None
    out: bool


def health_rows(run: Run, settings: HealthSettings) -> list[FigureRow]:
    """The run's figures (`detail["health"]`), each against its band; [] when none kept."""
    health = _health(run)
    bands = health.get("band") or {}
    rows = []
    for name, value in (health.get("figures") or {}).items():
        band = bands.get(name)
        if band is None:
            rows.append(FigureRow(name, float(value), None, None, None, None, False))
            continue
        low, high = float(band[0]), float(band[1])
        lowest, highest = margin(name, settings, low, high)
        rows.append(FigureRow(name, float(value), low, high, lowest, highest,
                              not lowest <= float(value) <= highest))
    return rows


@dataclass(frozen=True)
class Chart:
    """One figure over a model's last rounds: SVG coordinates (`WIDTH` x `HEIGHT`) of its
    values (`points`: x, y, round, value, out of band) and of its band as each run saw it
    (`band`: a polygon's points, "" when no run had one)."""

    name: str
    points: tuple[tuple[float, float, int, float, bool], ...]
    band: str
    line: str
    low: float
    high: float


def health_charts(runs: Iterable[Run], settings: HealthSettings, rounds: int = 20
                  ) -> list[Chart]:
    """A chart per figure of the model's `runs`: the latest run with figures of each of its
    last `rounds` rounds, oldest first."""
    by_round: dict[int, Run] = {}
    for run in sorted(runs, key=lambda r: r.created_at):
        if run.round_number is not None and not run.is_test and _health(run).get("figures"):
            by_round[run.round_number] = run
    chosen = [by_round[n] for n in sorted(by_round)[-rounds:]]
    names: list[str] = []
    for run in chosen:
        names += [n for n in _health(run)["figures"] if n not in names]
    return [chart for name in names if (chart := _chart(name, chosen, settings)) is not None]


def _chart(name: str, runs: list[Run], settings: HealthSettings) -> Chart | None:
    values: list[tuple[int, int, float, bool]] = []
    bands: list[tuple[int, float, float]] = []
    for i, run in enumerate(runs):
        row = next((r for r in health_rows(run, settings) if r.name == name), None)
        if row is None:
            continue
        values.append((i, run.round_number or 0, row.value, row.out))
        if row.lowest is not None and row.highest is not None:
            bands.append((i, row.lowest, row.highest))
    if not values:
        return None
    seen = [v for _, _, v, _ in values] + [b for _, lo, hi in bands for b in (lo, hi)]
    low, high = min(seen), max(seen)
    span = (high - low) or 1.0

    def x(i: int) -> float:
        return round(PAD + (WIDTH - 2 * PAD) * (i / max(len(runs) - 1, 1)), 1)

    def y(value: float) -> float:
        return round(HEIGHT - PAD - (HEIGHT - 2 * PAD) * (value - low) / span, 1)

    points = tuple((x(i), y(v), number, v, out) for i, number, v, out in values)
    upper = [f"{x(i)},{y(hi)}" for i, _, hi in bands]
    lower = [f"{x(i)},{y(lo)}" for i, lo, _ in reversed(bands)]
    line = " ".join(f"{px},{py}" for px, py, *_ in points)
    return Chart(name, points, " ".join(upper + lower), line, low, high)


def _health(run: Run) -> dict[str, Any]:
    health = run.detail.get("health")
    return health if isinstance(health, dict) else {}


def format_figure(value: float | None) -> str:
    """A figure as the pages show it: `6,720` for counts, `0.7012` for the rest."""
    if value is None:
        return ""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.4f}"
