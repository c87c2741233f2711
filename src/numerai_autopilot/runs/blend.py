"""A blend model's predictions: its members' predictions of the round, rank-averaged by weight.

A blend (`[models.ens] blend = { alpha = 0.5, beta = 0.3, gamma = 0.2 }`, config/blends.py)
runs no predictor and downloads nothing more than its round's live ids (cached, as for its
members). Its run waits until each member's run of the same round has its validated
predictions kept in the ledger (with its `uploading` stage change, before its upload),
rank-normalizes each (numerai-tools' `rank`: `(rank - 0.5) / count`, ties averaged), averages them
with the weights and validates the result like any submission. The pipeline then keeps and
uploads it as it does a predictor's (`PredictOutcome`), with the same checks.

    blender = Blender(ledger)
    outcome = await blender.blend(run, model, files.live_path, round_number, deadline)

Waiting polls the ledger, so members run by another instance sharing it count. A member is
missing when its run failed, was skipped or is held, or when it has no predictions once the
blend stops waiting (`models.NAME.blend_wait`, and never later than `UPLOAD_MARGIN_S` before
the run's deadline). A run started by a person (`autopilot run`, the dashboard's Run now, a
dry run) waits for member runs under way but not for members without a run of the round.
With `blend_missing = "renormalize"` the members present are blended when they hold at least
half the weight; otherwise, or with "fail", the run fails naming the missing members.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from numerai_autopilot.config import ModelConfig
from numerai_autopilot.errors import PredictorError, ValidationError
from numerai_autopilot.executor import PredictOutcome
from numerai_autopilot.ledger import Ledger, Run, RunState
from numerai_autopilot.ledger.states import UNFINISHED_STATES
from numerai_autopilot.validation.classic import submission_csv

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

# How often a waiting blend reads its members' runs from the ledger.
POLL_S = 2.0
# A blend stops waiting this long before its deadline, to upload in time.
UPLOAD_MARGIN_S = 60.0
# A member's run whose kept predictions count: past the checks that may hold it.
_USABLE = frozenset({RunState.UPLOADING, RunState.SUBMITTED})
_STARTED_BY_A_PERSON = frozenset({"manual", "dry-run"})
# How a member's run that left nothing to blend ended, by state (held: a suspect run
# waiting for a person, runs/health.py).
_ENDED = {"failed": "failed", "skipped": "was skipped", "held": "is held as suspect"}


class BlendError(PredictorError):
    """A blend cannot be made: members missing (which, and why) or their predictions do not
    fit together."""


@dataclass(frozen=True)
class Member:
    """One member of a blend for one round: the run whose predictions it uses, or why it is
    missing, or what it waits for."""

    name: str
    weight: float
    run: Run | None = None
    missing: str | None = None
    waiting: str | None = None

    @property
    def label(self) -> str:
        return f"{self.name} ({self.weight:g})"


def member(name: str, weight: float, runs: list[Run], round_number: int, *,
           dry_run: bool, started_by_a_person: bool) -> Member:
    """Member `name`'s state from its `runs` of the round (oldest first).

    Its predictions are usable once its run is uploading or submitted (a dry run's too, for
    a dry-run blend); a run under way is waited for; a failed, skipped or held one, with
    nothing usable, makes it missing. With no run at all it is waited for, unless the blend
    was `started_by_a_person` (nobody may start one).
    """
    ours = [r for r in runs if dry_run or not r.is_dry_run]
    usable = [r for r in ours if r.state in _USABLE or (dry_run and r.state is RunState.DRY_RUN)]
    if usable:
        return Member(name, weight, run=max(
            usable, key=lambda r: (r.state is RunState.SUBMITTED, r.created_at)))
    under_way = [r for r in ours if r.state in UNFINISHED_STATES]
    if under_way:
        latest = under_way[-1]
        return Member(name, weight, waiting=f"its run {latest.id} is {latest.state.value}")
    if ours:
        latest = ours[-1]
        ended = _ENDED.get(latest.state.value, f"is {latest.state.value}")
        why = f": {latest.error.splitlines()[0]}" if latest.error else ""
        return Member(name, weight, missing=f"its run {latest.id} {ended}{why}")
    if started_by_a_person:
        return Member(name, weight, missing=f"no run of round {round_number}; run it first "
                                            f"(`autopilot run {name}`)")
    return Member(name, weight, waiting=f"no run of round {round_number} yet")


class Blender:
    """Makes blend models' predictions from their members' predictions kept in `ledger`,
    reading the ledger every `poll_s` seconds while members are under way."""

    def __init__(self, ledger: Ledger, *, poll_s: float = POLL_S) -> None:
        self._ledger = ledger
        self._poll_s = poll_s

    async def blend(self, run: Run, model: ModelConfig, live_path: Path, round_number: int,
                    deadline: float) -> PredictOutcome:
        """The validated blend of `model`'s members' predictions of `round_number`, as the
        executor's outcome of a validated prediction (`csv`, `rows`, `detail`: the members
        used and missing; `queued_s`: the wait for them). `live_path`: the round's live
        file, for the ids. Raises BlendError (too few members; the message names them) or
        ValidationError."""
        assert model.blend is not None, f"model {model.name!r} is not a blend"
        waited = time.perf_counter()
        members = await self._members(run, model, round_number, deadline)
        csvs: dict[str, bytes] = {}
        for i, one in enumerate(members):
            if one.run is None:
                continue
            csv = await asyncio.to_thread(self._ledger.predictions, one.run.id)
            if csv is None:
                members[i] = replace(one, run=None, missing=f"its run {one.run.id}'s "
                                     "predictions are no longer kept")
            else:
                csvs[one.name] = csv
        started = time.perf_counter()
        used = _check_enough(model, members, round_number)
        weights = {one.name: one.weight for one in used}
        data, rows = await asyncio.to_thread(
            blend_csv, csvs, weights, live_path, model.name, model.tournament_id)
        await self._say(run, "warning" if len(used) < len(members) else "info",
                        _summary(members, used))
        return PredictOutcome(
            predictions=None, compute_s=time.perf_counter() - started, worker="blend",
            queued_s=started - waited, csv=data, rows=rows,
            detail={"blend": {m.name: {"weight": m.weight, "run": m.run.id} for m in used
                              if m.run is not None},
                    "blend_missing": {m.name: m.missing for m in members if m.missing}})

    async def _members(self, run: Run, model: ModelConfig, round_number: int,
                       deadline: float) -> list[Member]:
        """Each member, once none is waited for any more (or the wait is over: those still
        waited for are then missing)."""
        assert model.blend is not None
        until = min(deadline - UPLOAD_MARGIN_S, time.time() + model.blend_wait)
        said: set[str] = set()
        while True:
            runs = await asyncio.to_thread(
                self._ledger.round_runs, model.tournament_id, round_number, list(model.blend))
            members = [
                member(name, weight, [r for r in runs if r.model_name == name], round_number,
                       dry_run=run.is_dry_run,
                       started_by_a_person=run.source in _STARTED_BY_A_PERSON)
                for name, weight in model.blend.items()]
            left = until - time.time()
            if not any(m.waiting for m in members):
                return members
            if left <= 0:
                return [m if m.waiting is None else replace(
                    m, waiting=None, missing=f"{m.waiting} when the blend stopped waiting")
                    for m in members]
            for one in members:
                if one.waiting is not None and one.name not in said:
                    said.add(one.name)
                    await self._say(run, "info", f"waiting for {one.name}: {one.waiting}")
            await asyncio.sleep(min(self._poll_s, left))

    async def _say(self, run: Run, level: str, message: str) -> None:
        """A line of the run's log, and its copy in the server's log."""
        labels = {"run": run.id, "model": run.model_name, "round": run.round_number}
        getattr(log, level)("run %s (%s): %s", run.id, run.model_name, message, extra=labels)
        await asyncio.to_thread(self._ledger.log, run.id, level, message)


def describe(model: ModelConfig) -> str:
    """What a blend run does, for its log: `blending alpha 0.5, beta 0.5 (renormalize ...)`."""
    members = ", ".join(f"{name} {weight:g}" for name, weight in (model.blend or {}).items())
    return (f"blending {members} (blend_missing = {model.blend_missing}; waiting up to "
            f"{model.blend_wait:g} s for the members' predictions)")


def _check_enough(model: ModelConfig, members: list[Member], round_number: int
                  ) -> list[Member]:
    """The members to blend; BlendError when `blend_missing` forbids it."""
    used = [m for m in members if m.run is not None]
    missing = [m for m in members if m.run is None]
    if not missing:
        return used
    why = "; ".join(f"{m.label}: {m.missing}" for m in missing)
    if model.blend_missing == "fail":
        raise BlendError(f"blend {model.name!r}: members missing for round {round_number}: "
                         f"{why} (blend_missing = \"fail\"; with \"renormalize\" the others "
                         "are blended when they hold at least half the weight)")
    total = sum(m.weight for m in members)
    present = sum(m.weight for m in used)
    if 2 * present < total:
        have = ", ".join(m.label for m in used) or "none"
        raise BlendError(f"blend {model.name!r}: only {present:g} of its weight {total:g} has "
                         f"predictions for round {round_number} ({have}); at least half is "
                         f"needed. Missing: {why}")
    return used


def _summary(members: list[Member], used: list[Member]) -> str:
    parts = ", ".join(f"{m.name} ({m.weight:g}, run {m.run.id})" for m in used
                      if m.run is not None)
    missing = [m for m in members if m.run is None]
    if not missing:
        return f"blended {parts}"
    gone = "; ".join(f"{m.label}: {m.missing}" for m in missing)
    return (f"blended {parts}, weights renormalized over {sum(m.weight for m in used):g} of "
            f"{sum(m.weight for m in members):g}; missing {gone}")


def blend_csv(csvs: dict[str, bytes], weights: dict[str, float], live_path: Path,
              model_name: str, tournament: int) -> tuple[bytes, int]:
    """Rank-normalize each member's submission CSV (key column, value column), average the
    ranks with `weights` (a key some members lack: over those that have it) and validate
    the result as model `model_name`'s submission for `tournament`: (CSV bytes, rows).

    Raises BlendError when the members' CSVs name different key columns, ValidationError
    as `submission_csv` does.
    """
    import pandas as pd

    ranks: dict[str, pd.Series] = {}
    columns: dict[str, tuple[str, str]] = {}
    for name, csv in csvs.items():
        frame = pd.read_csv(io.BytesIO(csv), dtype=str, keep_default_na=False)
        if frame.shape[1] != 2:
            raise ValidationError(f"model {model_name!r}: member {name}'s kept predictions "
                                  f"have columns {list(frame.columns)}, not a key and a value")
        key, value = (str(c) for c in frame.columns)
        columns[name] = (key, value)
        values = pd.Series(frame[value].astype("float64").to_numpy(), index=frame[key])
        ranks[name] = (values.rank(method="average") - 0.5) / values.count()
    if len(set(columns.values())) > 1:
        shown = ", ".join(f"{name}: {','.join(cols)}" for name, cols in columns.items())
        raise BlendError(f"blend {model_name!r}: its members' predictions have different "
                         f"columns ({shown}); make them return the same key column")
    key, value = next(iter(columns.values()))
    table = pd.DataFrame(ranks)
    weight = pd.Series(weights).reindex(table.columns)
    blended = table.fillna(0.0).mul(weight).sum(axis=1) / table.notna().mul(weight).sum(axis=1)
    frame = pd.DataFrame({key: blended.index.astype(str), value: blended.to_numpy()})
    return submission_csv(frame, live_path, model_name, tournament)
