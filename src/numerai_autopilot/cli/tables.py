"""Run listings for the terminal, for pipes and for scripts.

    print_runs(rows, as_json=False)   # a table that fits 80 columns, errors under it

In a terminal: a table of short columns (a figure no listed run has gets no column), each
run's id as the shortest prefix (8 characters at least) that tells it from the others
listed, which `logs` accepts; a suspect run's state ends with `!`; every error, skip reason
and suspect figure follows the table on lines of its own, whole. Piped: the same without
colour or borders. With `as_json`: one JSON array with every field, for scripts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.table import Table

from numerai_autopilot.cli.shared import colour, console
from numerai_autopilot.config import TOURNAMENT_NAMES

MIN_ID = 8


@dataclass(frozen=True)
class RunRow:
    """One run as listed: what the table shows, and `extra` fields only JSON carries."""

    id: str
    model: str
    tournament: int
    round: int | None
    is_test: bool
    state: str
    seconds: float | None = None  # the whole run, once final
    predict_s: float | None = None
    peak_mb: float | None = None  # the worker's peak memory while it predicted
    rows: int | None = None
    outcome: str = ""  # the submission id, or the error / skip reason
    suspect: tuple[str, ...] = ()  # why its predictions left the model's band (health)
    extra: dict[str, Any] = field(default_factory=dict)

    def round_label(self) -> str:
        """`1100`, `test`, or the tournament's name before it outside Classic."""
        label = "test" if self.is_test or self.round is None else str(self.round)
        return label if self.tournament == 8 else (
            f"{TOURNAMENT_NAMES.get(self.tournament, str(self.tournament))} {label}")


def short_ids(ids: Sequence[str], minimum: int = MIN_ID) -> dict[str, str]:
    """Each id's shortest prefix, of `minimum` characters at least, that no other of `ids`
    starts with.

    >>> short_ids(["abcdefgh12", "abcdefgh34", "zz"], minimum=4)
    {'abcdefgh12': 'abcdefgh1', 'abcdefgh34': 'abcdefgh3', 'zz': 'zz'}
    """
    unique = sorted(set(ids))
    shortest: dict[str, str] = {}
    for i, run_id in enumerate(unique):
        length = minimum
        for neighbour in (unique[i - 1] if i else "", unique[i + 1] if i + 1 < len(unique) else ""):
            shared = next((n for n, (a, b) in enumerate(zip(run_id, neighbour, strict=False))
                           if a != b), min(len(run_id), len(neighbour)))
            length = max(length, shared + 1)
        shortest[run_id] = run_id[:length]
    return shortest


def print_runs(rows: Sequence[RunRow], *, as_json: bool = False, empty: str = "no runs yet") -> None:
    """Print `rows` as a table with the errors under it, or as JSON; `empty` when none."""
    if as_json:
        console.print_json(json.dumps([_as_dict(row) for row in rows]))
        return
    if not rows:
        console.print(empty)
        return
    ids = short_ids([row.id for row in rows])
    figures = {"predict": [_seconds(row.predict_s) for row in rows],
               "memory": [_mib(row.peak_mb) for row in rows],
               "total": [_seconds(row.seconds) for row in rows],
               "rows": ["" if row.rows is None else str(row.rows) for row in rows]}
    shown = {name: cells for name, cells in figures.items() if any(cells)}  # none: no column
    table = Table(box=None, pad_edge=False)
    table.add_column("run", no_wrap=True, min_width=max(map(len, ids.values())))
    table.add_column("model", overflow="fold")  # a long name folds: never cut to `mod…`
    for name in ("round", "state", *shown):
        table.add_column(name, no_wrap=True)
    for i, row in enumerate(rows):
        flag = "[red]![/]" if row.suspect else ""
        table.add_row(ids[row.id], row.model, row.round_label(), colour(row.state) + flag,
                      *(cells[i] for cells in shown.values()))
    console.print(table)
    for row in rows:
        if row.outcome and row.state != "submitted":
            console.print(f"{ids[row.id]} {row.model} {row.state}: {row.outcome}",
                          soft_wrap=True, markup=False, highlight=False)
        for reason in row.suspect:
            console.print(f"{ids[row.id]} {row.model} suspect (!): {reason}",
                          soft_wrap=True, markup=False, highlight=False)


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}s"


def _mib(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value / 1024:.1f}G" if value >= 1024 else f"{value:.0f}M"


def _as_dict(row: RunRow) -> dict[str, Any]:
    return {"id": row.id, "model": row.model, "tournament": row.tournament,
            "round": row.round, "is_test": row.is_test, "state": row.state,
            "seconds": row.seconds, "predict_s": row.predict_s, "peak_mb": row.peak_mb,
            "rows": row.rows, "suspect": bool(row.suspect),
            "outcome": row.outcome or None, **row.extra}
