"""The process's one current-round cache, against the sandbox over HTTP: one lookup at a time
per tournament, remembered for a while, asked again for a newer round or a fresher answer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from numerai_autopilot.numerai import DeadlineExceeded, NumeraiClient, RetryPolicy
from numerai_autopilot.runs import CurrentRounds
from numerai_autopilot.sandbox.testing import RunningSandbox

FAST_RETRY = RetryPolicy(initial=0.01, maximum=0.05, jitter=0.5, deadline_s=10.0)


class Counted:
    """The requests a client sent to Numerai (the sandbox)."""

    def __init__(self) -> None:
        self.sent = 0

    async def __call__(self, request: httpx.Request) -> None:
        self.sent += 1


@pytest.fixture
async def counted() -> AsyncIterator[tuple[httpx.AsyncClient, Counted]]:
    counter = Counted()
    async with httpx.AsyncClient(event_hooks={"request": [counter]}) as http:
        yield http, counter


@pytest.fixture
async def rounds(sandbox: RunningSandbox, counted: tuple[httpx.AsyncClient, Counted]
                 ) -> AsyncIterator[CurrentRounds]:
    client = NumeraiClient(counted[0], sandbox.url, retry=FAST_RETRY, timeout=10)
    cache = CurrentRounds(client)
    yield cache
    await cache.close()


async def test_many_callers_at_once_make_one_lookup_and_it_is_remembered(
    sandbox: RunningSandbox, rounds: CurrentRounds, counted: tuple[httpx.AsyncClient, Counted]
) -> None:
    found = await asyncio.gather(*(rounds.get(8) for _ in range(20)))
    assert {info.number for info in found} == {sandbox.state()["current_rounds"]["8"]["number"]}
    assert counted[1].sent == 1
    assert (await rounds.get(8)).number == found[0].number and counted[1].sent == 1
    await rounds.get(8, max_age=0)  # a caller that wants a fresh answer gets one
    assert counted[1].sent == 2
    assert rounds.known(8, found[0].number) == found[0]


async def test_a_round_newer_than_the_remembered_one_is_looked_up(
    sandbox: RunningSandbox, rounds: CurrentRounds
) -> None:
    before = await rounds.get(8)
    opened = sandbox.open_round()["number"]
    assert (await rounds.get(8)).number == before.number  # remembered
    assert (await rounds.get(8, at_least=opened)).number == opened
    assert (await rounds.get(8)).number == opened


async def test_a_caller_arriving_after_a_lookup_started_gets_a_later_answer(
    sandbox: RunningSandbox, rounds: CurrentRounds, counted: tuple[httpx.AsyncClient, Counted]
) -> None:
    sandbox.set_faults(operations={"rounds": {"latency_ms": 300}})
    in_flight = asyncio.ensure_future(rounds.get(8))
    await asyncio.sleep(0.1)  # the lookup has asked; then a round opens, then a run arrives
    opened = await asyncio.to_thread(sandbox.open_round)
    arrived = time.time()
    assert (await rounds.get(8, asked_after=arrived)).number == opened["number"]
    await in_flight
    assert counted[1].sent == 2  # the lookup in flight asked before: not joined
    assert (await rounds.get(8, asked_after=arrived)).number == opened["number"]  # remembered
    assert counted[1].sent == 2


async def test_a_caller_waits_only_as_long_as_it_chose(
    sandbox: RunningSandbox, rounds: CurrentRounds, counted: tuple[httpx.AsyncClient, Counted]
) -> None:
    sandbox.set_faults(operations={"rounds": {"latency_ms": 500}})
    with pytest.raises(DeadlineExceeded, match="tournament 8's current round within 0.05 s"):
        await rounds.get(8, wait=0.05)
    info = await rounds.get(8)  # joins the lookup still under way
    assert info.number == sandbox.state()["current_rounds"]["8"]["number"]
    assert counted[1].sent == 1


async def test_latest_never_raises(
    sandbox: RunningSandbox, rounds: CurrentRounds, caplog: pytest.LogCaptureFixture
) -> None:
    assert await rounds.latest(99) is None  # no such tournament: nothing seen, nothing to show
    seen = await rounds.get(8)
    sandbox.close_round()  # Numerai then names no current round: NotFoundError
    assert await rounds.latest(8, at_least=seen.number + 1) == seen  # the last one seen
    assert "reading the current round of tournament 8 failed" in caplog.text
