"""What the pages (and `/api/rounds`) show, computed from ledger runs: plain values, no I/O.

    grids = build_grids(config, runs, rounds={(8, 512): round_info}, now=utcnow())
    grids[0].rounds[0].cells[0].status    # "submitted", "running", "failed", ...
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, SecretStr

from numerai_autopilot.config import AppConfig
from numerai_autopilot.ledger import Run, RunState, StageRecord
from numerai_autopilot.numerai import RoundInfo

TOURNAMENT_NAMES = {8: "Classic", 11: "Signals", 12: "Crypto"}
# Statuses a grid cell can have, in the words the page uses.
STATUSES = ("submitted", "fallback", "running", "failed", "skipped", "missed", "waiting")


@dataclass(frozen=True)
class Cell:
    """One model in one round."""

    model: str
    status: str
    label: str
    run_id: str | None = None
    after_open_s: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class RoundRow:
    tournament: int
    number: int
    open_time: datetime | None
    close_time: datetime | None
    cells: tuple[Cell, ...]

    def closes_in_s(self, now: datetime) -> float | None:
        return None if self.close_time is None else (self.close_time - now).total_seconds()


@dataclass(frozen=True)
class Grid:
    """A tournament's rounds (newest first) by its configured models."""

    tournament: int
    models: tuple[str, ...]
    rounds: tuple[RoundRow, ...]

    @property
    def name(self) -> str:
        return TOURNAMENT_NAMES.get(self.tournament, str(self.tournament))

    @property
    def running(self) -> bool:
        return any(c.status == "running" for r in self.rounds for c in r.cells)


def build_grids(
    config: AppConfig,
    runs: Iterable[Run],
    rounds: Mapping[tuple[int, int], RoundInfo],
    now: datetime,
    max_rounds: int = 8,
) -> list[Grid]:
    """One grid per tournament that has configured models."""
    by_round: dict[tuple[int, int], list[Run]] = {}
    for run in runs:
        if run.round_number is not None and not run.is_test:
            by_round.setdefault((run.tournament, run.round_number), []).append(run)
    grids = []
    for tournament in sorted({m.tournament_id for m in config.models.values()}):
        models = tuple(sorted(m.name for m in config.models.values()
                              if m.tournament_id == tournament))
        numbers = {n for t, n in (*by_round, *rounds) if t == tournament}
        rows = []
        for number in sorted(numbers, reverse=True)[:max_rounds]:
            round_runs = by_round.get((tournament, number), [])
            info = rounds.get((tournament, number))
            open_time = info.open_time if info and info.open_time else (
                min(r.created_at for r in round_runs) if round_runs else None)
            close_time = info.close_time if info and info.close_time else next(
                (r.close_time for r in round_runs if r.close_time), None)
            cells = tuple(
                cell(name, [r for r in round_runs if r.model_name == name], open_time,
                     close_time, now)
                for name in models
            )
            rows.append(RoundRow(tournament, number, open_time, close_time, cells))
        grids.append(Grid(tournament, models, tuple(rows)))
    return grids


def cell(model: str, runs: list[Run], open_time: datetime | None,
         close_time: datetime | None, now: datetime) -> Cell:
    """The status of one (model, round) from its runs: a submission wins, else the latest run."""
    submitted = [r for r in runs if r.state is RunState.SUBMITTED]
    if submitted:
        run = min(submitted, key=lambda r: r.updated_at)
        after = (run.updated_at - open_time).total_seconds() if open_time else None
        status = "fallback" if run.detail.get("fallback") else "submitted"
        return Cell(model, status, status, run.id, after)
    if not runs:
        closed = close_time is not None and now >= close_time
        return Cell(model, "missed" if closed else "waiting", "missed" if closed else "waiting")
    run = max(runs, key=lambda r: r.created_at)
    status = run.state.value if run.is_final else "running"
    return Cell(model, status, run.state.value, run.id, error=run.error)


@dataclass(frozen=True)
class StageView:
    state: str
    attempt: int
    started_at: datetime
    ended_at: datetime | None
    duration_s: float | None
    outcome: str | None
    error: str | None


def stage_views(stages: Iterable[StageRecord]) -> list[StageView]:
    return [StageView(s.state.value, s.attempt, s.started_at, s.ended_at, s.duration_s,
                      s.outcome, s.error) for s in stages]


def validation_result(run: Run, stages: Iterable[StageRecord]) -> str:
    """What validation said: the row count that passed, its error, or not reached yet."""
    validating = [s for s in stages if s.state is RunState.VALIDATING]
    if "rows" in run.detail:
        return f"passed: {run.detail['rows']:,} rows"
    failed = [s for s in validating if s.outcome == RunState.FAILED.value]
    if failed:
        return f"failed: {failed[-1].error}"
    return "running" if validating and validating[-1].ended_at is None else "not reached"


def public_settings(model: BaseModel) -> dict[str, Any]:
    """A config table as shown on a page: secrets masked, paths as text."""
    shown: dict[str, Any] = {}
    for key in type(model).model_fields:
        value = getattr(model, key)
        if isinstance(value, SecretStr):
            value = "***" if value.get_secret_value() else ""
        elif isinstance(value, tuple | list) and any(isinstance(v, SecretStr) for v in value):
            value = ["***" for _ in value]
        shown[key] = value
    return shown


def duration(seconds: float | None) -> str:
    """`1 h 02 min`, `3 min 12 s`, `4.2 s`: how the pages show a duration."""
    if seconds is None:
        return ""
    seconds = max(seconds, 0.0)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def countdown(seconds: float | None) -> str:
    if seconds is None:
        return "close time unknown"
    return f"closes in {duration(seconds)}" if seconds > 0 else "closed"
