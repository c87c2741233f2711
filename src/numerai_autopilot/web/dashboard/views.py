"""What the pages and the JSON API show about rounds and runs, as plain values.

`load_grids` reads the recent runs from the ledger and the rounds' times from the runtime's
current rounds; everything else here is a pure function of what it is given (no I/O), so
the grid's rules are tested without a server.

    grids, runs = await load_grids(runtime, max_rounds=8)
    grids[0].rounds[0].cells[0].status    # "submitted", "running", "failed", ...
"""

from __future__ import annotations

import asyncio
import os
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, BeforeValidator, SecretStr
from pydantic.fields import FieldInfo

from numerai_autopilot.config import AppConfig, format_size, parse_duration, parse_size
from numerai_autopilot.ledger import Run, RunState, StageRecord
from numerai_autopilot.numerai import RoundInfo
from numerai_autopilot.runtime import Runtime
from numerai_autopilot.web.dashboard.health import is_suspect

TOURNAMENT_NAMES = {8: "Classic", 11: "Signals", 12: "Crypto"}
# Statuses a grid cell can have, in the words the page uses.
STATUSES = ("submitted", "fallback", "running", "held", "failed", "skipped", "missed", "waiting")
_RECENT_RUNS = 500


@dataclass(frozen=True)
class Cell:
    """One model in one round."""

    model: str
    status: str
    label: str
    run_id: str | None = None
    after_open_s: float | None = None
    error: str | None = None
    suspect: bool = False  # its predictions left the model's band (prediction health)


@dataclass(frozen=True)
class RoundRow:
    """One round of a grid: its times (None when unknown) and a cell per model."""

    tournament: int
    number: int
    open_time: datetime | None
    close_time: datetime | None
    cells: tuple[Cell, ...]

    def closes_in_s(self, now: datetime) -> float | None:
        """Seconds until the round closes (negative once closed), or None if unknown."""
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
        """Some run in the grid is in progress (the page keeps polling)."""
        return any(c.status == "running" for r in self.rounds for c in r.cells)


async def load_grids(runtime: Runtime, max_rounds: int = 8) -> tuple[list[Grid], list[Run]]:
    """The round grids (`build_grids`) of the ledger's recent runs, and those runs (newest
    first). Each tournament's current round comes from the runtime's current rounds, so a
    round that opened with no run yet shows as waiting; dry runs make no round appear."""
    runs = await asyncio.to_thread(runtime.ledger.runs, limit=_RECENT_RUNS)
    rounds: dict[tuple[int, int], RoundInfo] = {}
    for tournament in sorted({m.tournament_id for m in runtime.config.models.values()}):
        numbers = [r.round_number for r in runs if r.tournament == tournament
                   and r.round_number is not None and not r.is_dry_run]
        info = await runtime.rounds.latest(tournament, at_least=max(numbers, default=None))
        if info is not None:
            rounds[(tournament, info.number)] = info
        for number in set(numbers):
            known = runtime.rounds.known(tournament, number)
            if known is not None:
                rounds.setdefault((tournament, number), known)
    grids = build_grids(runtime.config, runs, rounds, datetime.now(UTC), max_rounds)
    return grids, runs


def build_grids(
    config: AppConfig,
    runs: Iterable[Run],
    rounds: Mapping[tuple[int, int], RoundInfo],
    now: datetime,
    max_rounds: int = 8,
) -> list[Grid]:
    """One grid per tournament that has configured models, its rounds newest first (at most
    `max_rounds`): the rounds of `runs` (test runs and dry runs left out: they are no
    round's runs) and of `rounds` (number -> the round's times, from Numerai). A round's
    open time is Numerai's, else its first run's arrival; its close time Numerai's, else
    the one any of its runs was given (a dry run's too: it is the round's all the same)."""
    by_round: dict[tuple[int, int], list[Run]] = {}
    closes: dict[tuple[int, int], datetime] = {}
    for run in runs:
        if run.round_number is None or run.is_test:
            continue
        if run.close_time is not None:
            closes.setdefault((run.tournament, run.round_number), run.close_time)
        if not run.is_dry_run:
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
            close_time = (info.close_time if info and info.close_time
                          else closes.get((tournament, number)))
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
    """The status of one (model, round) from its runs: a submission wins, else the latest
    run (a held one is "held"); `suspect` when that run's predictions left the band."""
    submitted = [r for r in runs if r.state is RunState.SUBMITTED]
    if submitted:
        run = min(submitted, key=lambda r: r.updated_at)
        after = (run.updated_at - open_time).total_seconds() if open_time else None
        status = "fallback" if run.detail.get("fallback") else "submitted"
        return Cell(model, status, status, run.id, after, suspect=is_suspect(run))
    if not runs:
        closed = close_time is not None and now >= close_time
        return Cell(model, "missed" if closed else "waiting", "missed" if closed else "waiting")
    run = max(runs, key=lambda r: r.created_at)
    status = run.state.value if run.is_final or run.state is RunState.HELD else "running"
    return Cell(model, status, run.state.value, run.id, error=run.error, suspect=is_suspect(run))


def validation_result(run: Run, stages: Iterable[StageRecord]) -> str:
    """What validation said: the row count that passed, its error, or not reached yet."""
    validating = [s for s in stages if s.state is RunState.VALIDATING]
    if "rows" in run.detail:
        return f"passed: {run.detail['rows']:,} rows"
    failed = [s for s in validating if s.outcome == RunState.FAILED.value]
    if failed:
        return f"failed: {failed[-1].error}"
    return "running" if validating and validating[-1].ended_at is None else "not reached"


def predict_time(run: Run, stages: Iterable[StageRecord], now: datetime) -> str:
    """The predicting stage's time as the stage table shows it (its last attempt), then what
    the worker spent it on and the memory it took: `12.3 s (predictor 10.1 s on 2 threads,
    loading 1.2 s, ...; worker peak 1.4 GiB, model 300 MiB)`; "" before the stage was
    entered.
    """
    predicting = [s for s in stages if s.state is RunState.PREDICTING]
    if not predicting:
        return ""
    stage = predicting[-1]
    if stage.duration_s is None:
        return f"running for {duration((now - stage.started_at).total_seconds())}"
    # loaded while the round's data downloaded, or the model before it predicted: that
    # stage's or that model's time, not this one's
    loading = "loading it" + (" during the download" if "data_wait_s" in run.detail else
                              " while the model before it predicted"
                              if run.detail.get("loaded_ahead") else "")
    parts = (("compute_s", "predictor"), ("load_s", loading),
             ("queued_s", "waiting for a worker"), ("validate_s", "validation"))
    spent = [f"{label} {duration(run.detail[key])}" for key, label in parts
             if isinstance(run.detail.get(key), int | float)]
    threads = run.detail.get("threads")
    if spent and "compute_s" in run.detail and isinstance(threads, int) and threads > 1:
        spent[0] += f" on {threads} threads"
    memory = [f"{label} {format_size(int(run.detail[key] * 2**20))}"
              for key, label in (("peak_mb", "worker peak"), ("model_mb", "model"))
              if isinstance(run.detail.get(key), int | float) and run.detail[key] > 0]
    said = ", ".join(spent) + ("; " if spent and memory else "") + ", ".join(memory)
    return duration(stage.duration_s) + (f" ({said})" if said else "")


def settings_rows(model: BaseModel, leave_out: Iterable[str] = ()) -> list[tuple[str, str]]:
    """A config table as a page's rows, `(key, text)`: secrets masked, sizes and durations
    with their units (`4 GiB`, `10 min 00 s`), unset values "not set"; `leave_out` keys
    (the page shows them elsewhere) are not listed."""
    shown = public_settings(model)
    fields = type(model).model_fields
    rows = []
    for key, value in shown.items():
        if key in leave_out:
            continue
        parser = _parser(fields[key])
        if value is None or value == () or value == []:
            text = "not set"
        elif parser is parse_size:
            text = format_size(int(value))
        elif parser is parse_duration:
            text = duration(float(value))
        elif isinstance(value, list | tuple):
            text = ", ".join(str(v) for v in value)
        else:
            text = str(value).lower() if isinstance(value, bool) else str(value)
        rows.append((key, text))
    return rows


def _parser(field: FieldInfo) -> object:
    """The function a field's value is parsed with on the way in (`parse_size`...), if any;
    looked for in an optional field's type too."""
    metadata = list(field.metadata)
    for arg in typing.get_args(field.annotation):
        metadata += getattr(arg, "__metadata__", ())
    return next((m.func for m in metadata if isinstance(m, BeforeValidator)), None)


def public_settings(model: BaseModel) -> dict[str, Any]:
    """A config table as shown on a page or by the API: secrets masked, paths as text."""
    shown: dict[str, Any] = {}
    for key in type(model).model_fields:
        value = getattr(model, key)
        if isinstance(value, SecretStr):
            value = "***" if value.get_secret_value() else ""
        elif isinstance(value, tuple | list) and any(isinstance(v, SecretStr) for v in value):
            value = ["***" for _ in value]
        elif isinstance(value, os.PathLike):
            value = os.fspath(value)
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
    """`closes in 3 min 12 s`, `closed`, or `close time unknown`."""
    if seconds is None:
        return "close time unknown"
    return f"closes in {duration(seconds)}" if seconds > 0 else "closed"
