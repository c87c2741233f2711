"""The round a run belongs to, and when its retries stop.

`CurrentRounds` asks Numerai for a tournament's current round once however many runs ask at
the same time (a round opening starts them all together) and remembers it for 30 s;
`run_deadline` turns the round's close into the run's deadline (later for late submissions,
an error once the round has closed); `check_still_current` stops a run whose round Numerai
has already replaced with a newer one.
"""

from __future__ import annotations

import asyncio
import time

from numerai_autopilot.config import ModelConfig
from numerai_autopilot.errors import AutopilotError
from numerai_autopilot.ledger import Run
from numerai_autopilot.numerai import NumeraiClient, RoundInfo

_ROUND_CACHE_S = 30.0
# Until a round's close is known: keep asking through an outage for up to a round's length.
NO_CLOSE_TIME_S = 3600.0
_LATE_WINDOW_S = 6 * 3600.0


class RoundClosed(AutopilotError):
    """The round closed before the run could submit, and the model does not submit late."""


class CurrentRounds:
    """Each tournament's current round, asked for once at a time and remembered for 30 s."""

    def __init__(self, client: NumeraiClient) -> None:
        self._client = client
        self._known: dict[int, tuple[float, RoundInfo]] = {}
        self._lookups: dict[int, asyncio.Future[RoundInfo]] = {}

    async def get(self, tournament: int, at_least: int | None = None) -> RoundInfo:
        """The current round, remembered for 30 s unless it is older than `at_least` (the
        run's round, opened since the last lookup: its close is the run's deadline)."""
        cached = self._known.get(tournament)
        if (cached and time.monotonic() - cached[0] < _ROUND_CACHE_S
                and (at_least is None or cached[1].number >= at_least)):
            return cached[1]
        pending = self._lookups.get(tournament)
        if pending is None:
            pending = asyncio.ensure_future(self._lookup(tournament))
            self._lookups[tournament] = pending
            pending.add_done_callback(lambda _: self._lookups.pop(tournament, None))
        return await asyncio.shield(pending)

    async def _lookup(self, tournament: int) -> RoundInfo:
        info = await self._client.current_round(
            tournament=tournament, deadline=time.time() + NO_CLOSE_TIME_S
        )
        self._known[tournament] = (time.monotonic(), info)
        return info


def run_deadline(run: Run, model: ModelConfig, info: RoundInfo, round_number: int) -> float:
    """When retries stop: the round's close, or later for late submissions."""
    now = time.time()
    close = run.close_time
    if close is None and info.number == round_number:
        close = info.close_time
    if close is None:
        return now + NO_CLOSE_TIME_S
    if model.late_submissions:
        return max(close.timestamp(), now) + _LATE_WINDOW_S
    if now >= close.timestamp() and run.is_test:
        return now + NO_CLOSE_TIME_S  # a test trigger between rounds: no deadline to keep
    if now >= close.timestamp():
        raise RoundClosed(
            f"round {round_number} closed at {close:%Y-%m-%d %H:%M} UTC before this run could "
            "submit; set late_submissions = true to submit late (scored, not staked)"
        )
    return close.timestamp()


def check_still_current(info: RoundInfo, round_number: int) -> None:
    """Raise RoundClosed when Numerai's current round (`info`) is newer than the run's.

    Numerai's `create_submission` names no round: a submission is for the round open when it
    arrives. A run of an older round (a server back after a day down resuming it, a late or
    replayed webhook) would send that round's predictions to the new round, where they are
    refused after the upload (other ids) or, where the ids overlap, taken as the new round's.
    Late submissions included: they end when the next round opens. The new round's own run
    (its webhook, or the watcher) submits for it.
    """
    if info.number > round_number:
        raise RoundClosed(
            f"round {round_number} is over: Numerai's current round is {info.number}, and a "
            f"submission now would count for round {info.number}; that round's own run (its "
            "webhook, or the watcher) submits for it"
        )
