"""Each tournament's current round, shared by the whole process, and when a run's retries stop.

`CurrentRounds` is the one cache of Numerai's current rounds (the pipeline, the monitor, the
dashboard and the round watcher read it): a round opening starts every model's run at once,
so Numerai is asked once at a time per tournament. `run_deadline` and `check_still_current`
decide when a run must stop.

    rounds = CurrentRounds(client)
    info = await rounds.get(8, at_least=512)     # raises the client's errors
    info = await rounds.latest(8)                # never raises: the last one seen, or None
"""

from __future__ import annotations

import asyncio
import logging
import time

from numerai_autopilot.config import ModelConfig
from numerai_autopilot.errors import AutopilotError
from numerai_autopilot.ledger import Run
from numerai_autopilot.numerai import DeadlineExceeded, NumeraiClient, RoundInfo

log = logging.getLogger(__name__)

# How long a current round is remembered: a new round is noticed within this time, or at
# once by a run that names it.
ROUND_CACHE_S = 30.0
# Until a round's close is known: keep asking through an outage for up to a round's length.
NO_CLOSE_TIME_S = 3600.0
_LATE_WINDOW_S = 6 * 3600.0
# How long a page or an alert waits for Numerai before showing what it already knows.
_LATEST_WAIT_S = 10.0


class RoundClosed(AutopilotError):
    """The round closed before the run could submit, and the model does not submit late."""


class CurrentRounds:
    """Each tournament's current round from Numerai: one lookup at a time per tournament,
    remembered for `ROUND_CACHE_S`; every round seen is kept for `known`.

    A lookup keeps retrying through an outage for up to an hour (a run's deadline needs the
    close); each caller waits for it only as long as it chose (`wait`).
    """

    def __init__(self, client: NumeraiClient) -> None:
        self._client = client
        # when Numerai was asked (wall clock), and its answer
        self._current: dict[int, tuple[float, RoundInfo]] = {}
        self._seen: dict[tuple[int, int], RoundInfo] = {}
        self._lookups: dict[int, asyncio.Task[tuple[float, RoundInfo]]] = {}

    async def get(self, tournament: int, *, at_least: int | None = None,
                  asked_after: float | None = None, max_age: float = ROUND_CACHE_S,
                  wait: float | None = None) -> RoundInfo:
        """The tournament's current round.

        :param at_least: a round number known to exist (a run's round): a remembered round
            older than it is looked up again, since the newer round opened after it.
        :param asked_after: a wall-clock time (a run's arrival): only an answer Numerai was
            asked for after it will do, since a round may have opened just before it.
        :param max_age: how old a remembered answer may be.
        :param wait: at most this many seconds of waiting for Numerai (the lookup goes on
            for the others); DeadlineExceeded after that. None waits for the lookup's end.
        :raises NumeraiError: what the client raises (NotFoundError: no open round).
        """
        cached = self._current.get(tournament)
        if cached is not None and self._will_do(cached[0], cached[1], at_least, asked_after,
                                                time.time() - max_age):
            return cached[1]
        asked, info = await self._wait(tournament, wait)
        if not self._will_do(asked, info, at_least, asked_after, float("-inf")):
            # the lookup joined started before the run's round opened, or before it arrived
            asked, info = await self._wait(tournament, wait)
        return info

    @staticmethod
    def _will_do(asked: float, info: RoundInfo, at_least: int | None,
                 asked_after: float | None, not_before: float) -> bool:
        return (asked >= not_before and (asked_after is None or asked >= asked_after)
                and (at_least is None or info.number >= at_least))

    async def latest(self, tournament: int, *, at_least: int | None = None) -> RoundInfo | None:
        """The current round for a page or an alert: as `get`, but when Numerai cannot say
        within a few seconds, the last one seen (None if none was). Never raises."""
        try:
            return await self.get(tournament, at_least=at_least, wait=_LATEST_WAIT_S)
        except Exception as exc:  # noqa: BLE001  (shown or alerted on without it)
            log.warning("reading the current round of tournament %s failed: %s", tournament, exc)
            cached = self._current.get(tournament)
            return cached[1] if cached else None

    def known(self, tournament: int, number: int) -> RoundInfo | None:
        """A round this process has seen (its open and close times), or None."""
        return self._seen.get((tournament, number))

    async def close(self) -> None:
        """Stop the lookups in flight (at shutdown, before the client closes)."""
        lookups = list(self._lookups.values())
        for lookup in lookups:
            lookup.cancel()
        await asyncio.gather(*lookups, return_exceptions=True)

    async def _wait(self, tournament: int, wait: float | None) -> tuple[float, RoundInfo]:
        """The answer of the tournament's lookup in flight, or of a new one, with when it
        asked."""
        lookup = self._lookups.get(tournament)
        if lookup is None:
            lookup = asyncio.create_task(self._lookup(tournament), name=f"round-{tournament}")
            self._lookups[tournament] = lookup
            lookup.add_done_callback(lambda done: self._finished(tournament, done))
        try:
            return await asyncio.wait_for(asyncio.shield(lookup), wait)
        except TimeoutError:
            raise DeadlineExceeded(
                f"Numerai did not say tournament {tournament}'s current round within "
                f"{wait:g} s; still asking"
            ) from None

    def _finished(self, tournament: int,
                  lookup: asyncio.Task[tuple[float, RoundInfo]]) -> None:
        if self._lookups.get(tournament) is lookup:
            del self._lookups[tournament]
        if not lookup.cancelled():
            lookup.exception()  # retrieved: its waiters, if any, raise it themselves

    async def _lookup(self, tournament: int) -> tuple[float, RoundInfo]:
        asked = time.time()
        info = await self._client.current_round(
            tournament=tournament, deadline=asked + NO_CLOSE_TIME_S
        )
        self._current[tournament] = (asked, info)
        self._seen[(tournament, info.number)] = info
        return asked, info


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
