"""The retry arithmetic: backoff, jitter, deadlines. A fake clock, so no real waiting."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numerai_autopilot.numerai import (
    Clock,
    DeadlineExceeded,
    GraphQLError,
    RetryPolicy,
    TransientError,
)
from numerai_autopilot.numerai.retry import retry_call

WALL_OFFSET = 1_700_000_000.0


class FakeTime:
    """Monotonic and wall time that only move when the code sleeps or an attempt 'takes' time."""

    def __init__(self, rand: float = 0.5) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []
        self._rand = rand

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> Clock:
        return Clock(
            monotonic=lambda: self.now,
            wall=lambda: self.now + WALL_OFFSET,
            sleep=self.sleep,
            rand=lambda: self._rand,
        )

    def wall(self) -> float:
        return self.now + WALL_OFFSET


def failing(time: FakeTime, failures: int, cost: float = 0.0, result: str = "ok"):  # type: ignore[no-untyped-def]
    calls: list[float] = []

    async def attempt(remaining: float) -> str:
        calls.append(remaining)
        time.now += min(cost, remaining)
        if len(calls) <= failures:
            raise TransientError(f"boom {len(calls)}")
        return result

    return attempt, calls


async def test_transient_errors_are_retried_until_success() -> None:
    time = FakeTime()
    attempt, calls = failing(time, failures=3)
    result = await retry_call(
        attempt, what="op", policy=RetryPolicy(), deadline=None, clock=time.clock()
    )
    assert result == "ok"
    assert len(calls) == 4
    assert len(time.sleeps) == 3


async def test_non_transient_errors_are_not_retried() -> None:
    time = FakeTime()
    calls = 0

    async def attempt(remaining: float) -> str:
        nonlocal calls
        calls += 1
        raise GraphQLError("rounds", "bad argument")

    with pytest.raises(GraphQLError):
        await retry_call(
            attempt, what="op", policy=RetryPolicy(), deadline=None, clock=time.clock()
        )
    assert calls == 1
    assert time.sleeps == []


async def test_gives_up_at_the_policy_deadline_with_the_last_cause() -> None:
    time = FakeTime()
    attempt, calls = failing(time, failures=10_000, cost=1.0)
    start = time.now
    with pytest.raises(DeadlineExceeded) as info:
        await retry_call(
            attempt,
            what="op",
            policy=RetryPolicy(deadline_s=30),
            deadline=None,
            clock=time.clock(),
        )
    assert time.now - start <= 30
    assert isinstance(info.value.last_error, TransientError)
    assert str(info.value.last_error) == f"boom {len(calls)}"
    assert info.value.__cause__ is info.value.last_error
    assert isinstance(info.value, TransientError)


async def test_no_retry_starts_too_late_to_be_answered() -> None:
    # Each try fails at once; backoff alone would leave a few milliseconds for a last try,
    # whose timeout would then replace the real error ("HTTP 503") in the report.
    time = FakeTime(rand=0.0)
    attempt, calls = failing(time, failures=10_000)
    with pytest.raises(DeadlineExceeded) as info:
        await retry_call(
            attempt,
            what="op",
            policy=RetryPolicy(initial=0.32, maximum=0.32, jitter=0.0, deadline_s=1.0),
            deadline=None,
            clock=time.clock(),
        )
    assert calls == pytest.approx([1.0, 0.68, 0.36])  # not a fourth with 0.04 s left
    assert str(info.value.last_error) == "boom 3"


async def test_the_call_deadline_wins_when_sooner() -> None:
    time = FakeTime()
    attempt, calls = failing(time, failures=10_000, cost=0.5)
    start = time.now
    with pytest.raises(DeadlineExceeded):
        await retry_call(
            attempt,
            what="op",
            policy=RetryPolicy(deadline_s=300),
            deadline=time.wall() + 5,
            clock=time.clock(),
        )
    assert time.now - start <= 5
    assert all(remaining <= 5 for remaining in calls)


async def test_a_passed_deadline_makes_no_attempt() -> None:
    time = FakeTime()
    attempt, calls = failing(time, failures=0)
    with pytest.raises(DeadlineExceeded, match="before the first try"):
        await retry_call(
            attempt, what="op", policy=RetryPolicy(), deadline=time.wall() - 1, clock=time.clock()
        )
    assert calls == []


async def test_retry_after_is_honoured() -> None:
    time = FakeTime()
    calls = 0

    async def attempt(remaining: float) -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise TransientError("busy", retry_after=7.0)
        return "ok"

    await retry_call(attempt, what="op", policy=RetryPolicy(), deadline=None, clock=time.clock())
    assert time.sleeps == [7.0]


async def test_before_retry_can_settle_the_call() -> None:
    time = FakeTime()
    attempt, calls = failing(time, failures=10)

    async def settled(_: TransientError, remaining: float) -> str | None:
        return "found"

    result = await retry_call(
        attempt,
        what="op",
        policy=RetryPolicy(),
        deadline=None,
        clock=time.clock(),
        before_retry=settled,
    )
    assert result == "found"
    assert len(calls) == 1


def test_backoff_grows_exponentially_and_is_capped() -> None:
    policy = RetryPolicy(initial=0.5, maximum=4.0, multiplier=2.0, jitter=0.0)
    assert [policy.backoff(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert policy.backoff(10_000) == 4.0


def test_jitter_shrinks_the_delay_by_at_most_its_fraction() -> None:
    policy = RetryPolicy(initial=1.0, maximum=1.0, jitter=0.5)
    assert policy.backoff(0, rand=lambda: 0.0) == 1.0
    assert policy.backoff(0, rand=lambda: 1.0) == 0.5
    full = RetryPolicy(initial=1.0, maximum=1.0, jitter=1.0)
    assert full.backoff(0, rand=lambda: 1.0) == 0.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial": 0},
        {"initial": 5, "maximum": 1},
        {"multiplier": 0.5},
        {"jitter": 1.5},
        {"deadline_s": 0},
    ],
)
def test_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="RetryPolicy"):
        RetryPolicy(**kwargs)


@settings(max_examples=200, deadline=None)
@given(
    initial=st.floats(0.01, 5),
    multiplier=st.floats(1, 4),
    jitter=st.floats(0, 1),
    rand=st.floats(0, 1),
    deadline_s=st.floats(0.1, 100),
    call_deadline=st.one_of(st.none(), st.floats(-1, 100)),
    cost=st.floats(0, 3),
    failures=st.integers(0, 50),
)
def test_never_sleeps_past_the_deadline(
    initial: float,
    multiplier: float,
    jitter: float,
    rand: float,
    deadline_s: float,
    call_deadline: float | None,
    cost: float,
    failures: int,
) -> None:
    time = FakeTime(rand=rand)
    policy = RetryPolicy(
        initial=initial,
        maximum=max(initial, 10.0),
        multiplier=multiplier,
        jitter=jitter,
        deadline_s=deadline_s,
    )
    attempt, calls = failing(time, failures=failures, cost=cost)
    start = time.now
    limit = deadline_s if call_deadline is None else min(deadline_s, call_deadline)
    absolute = None if call_deadline is None else time.wall() + call_deadline
    try:
        asyncio.run(
            retry_call(attempt, what="op", policy=policy, deadline=absolute, clock=time.clock())
        )
    except DeadlineExceeded:
        pass
    # Sleeping ends strictly before the deadline; an attempt is cut at it.
    # (1e-6: the absolute deadline goes through a wall-clock float near 1.7e9.)
    assert time.now - start <= max(limit, 0) + 1e-6
    # No retry starts with less than a tenth of the window (at most 1 s) left.
    assert all(left >= min(1.0, limit / 10) - 1e-6 for left in calls[1:])
