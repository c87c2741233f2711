"""Retrying transient failures with exponential backoff and jitter, inside a deadline."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from numerai_autopilot.numerai.errors import DeadlineExceeded, TransientError

T = TypeVar("T")
log = logging.getLogger(__name__)

# The least time a retry is started with, when the budget is long; a tenth of it otherwise.
_MIN_TRY_S = 1.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How transient failures are retried.

    The n-th retry waits ``min(maximum, initial * multiplier**n)`` shrunk by a random
    fraction of up to ``jitter`` (1.0 is "full jitter", 0 none), so that many models
    retrying at once do not hit Numerai in lockstep. No retry starts, and no sleep ends,
    later than ``deadline_s`` after the call began (or the call's own deadline if sooner),
    and no retry starts with less than a tenth of that window (at most 1 s) left: such a
    try could only time out, and its timeout would hide the failure that mattered.
    """

    initial: float = 0.5
    maximum: float = 10.0
    multiplier: float = 2.0
    jitter: float = 0.5
    deadline_s: float = 300.0

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.maximum:
            raise ValueError(f"RetryPolicy: need 0 < initial <= maximum, got {self}")
        if self.multiplier < 1:
            raise ValueError(f"RetryPolicy: multiplier must be >= 1, got {self.multiplier}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"RetryPolicy: jitter must be within [0, 1], got {self.jitter}")
        if self.deadline_s <= 0:
            raise ValueError(f"RetryPolicy: deadline_s must be > 0, got {self.deadline_s}")

    def backoff(self, retry: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number ``retry`` (0-based)."""
        # Cap the exponent so a long outage cannot overflow the float.
        base = min(self.maximum, self.initial * self.multiplier ** min(retry, 64))
        return base * (1.0 - self.jitter * rand())


@dataclass(frozen=True, slots=True)
class Clock:
    """Time sources, replaceable in tests of the retry arithmetic itself."""

    monotonic: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    rand: Callable[[], float] = random.random


class Budget:
    """The time a call may spend, from its policy and an optional absolute deadline.

    Measured on the monotonic clock so that a wall-clock jump cannot stretch it; the
    absolute ``deadline`` (a ``time.time()`` value) is converted once, at the start.
    """

    def __init__(self, policy: RetryPolicy, deadline: float | None, clock: Clock) -> None:
        self._policy = policy
        self._clock = clock
        now = clock.monotonic()
        self._hard_end = float("inf") if deadline is None else now + (deadline - clock.wall())
        self._open(now)

    def _open(self, now: float) -> None:
        """A policy window from `now`, capped by the absolute deadline."""
        self._end = min(now + self._policy.deadline_s, self._hard_end)
        self._min_try = min(_MIN_TRY_S, max(self._end - now, 0.0) / 10)

    def remaining(self) -> float:
        """Seconds left in the current window (negative once it is over)."""
        return self._end - self._clock.monotonic()

    def wall_deadline(self) -> float:
        """The end of this budget as an absolute ``time.time()`` value, for sub-calls."""
        return self._clock.wall() + self.remaining()

    def hard_remaining(self) -> float:
        """Time left before the caller's absolute deadline (infinite without one)."""
        return self._hard_end - self._clock.monotonic()

    def restart(self) -> None:
        """Opens a fresh policy window (capped by the absolute deadline) after progress."""
        self._open(self._clock.monotonic())

    def retry_fits(self, delay: float) -> bool:
        """Whether a retry after sleeping `delay` still starts with the least time a try
        needs (see RetryPolicy)."""
        return delay + self._min_try < self.remaining()


async def retry_call(
    attempt: Callable[[float], Awaitable[T]],
    *,
    what: str,
    policy: RetryPolicy,
    deadline: float | None,
    clock: Clock | None = None,
    before_retry: Callable[[TransientError, float], Awaitable[T | None]] | None = None,
) -> T:
    """Calls ``attempt(seconds_left)`` until it returns or raises a non-transient error.

    ``before_retry(last_error, seconds_left)`` runs after each backoff sleep; a non-None
    result ends the loop with that value (used to find out whether a mutation whose answer
    was lost took effect). Raises DeadlineExceeded, chained to the last transient error,
    when the next try would start after the deadline.
    """
    clock = clock or Clock()
    budget = Budget(policy, deadline, clock)
    last: TransientError | None = None
    tries = 0
    while True:
        remaining = budget.remaining()
        if remaining <= 0:
            raise deadline_exceeded(what, tries, last)
        try:
            return await attempt(remaining)
        except DeadlineExceeded:
            # A nested call already spent the time: retrying it would overrun.
            raise
        except TransientError as exc:
            last = exc
        tries += 1
        delay = policy.backoff(tries - 1, clock.rand)
        if last.retry_after is not None:
            delay = max(delay, last.retry_after)
        if not budget.retry_fits(delay):
            raise deadline_exceeded(what, tries, last)
        log.warning("%s; retry %d in %.2fs", last, tries, delay)
        await clock.sleep(delay)
        if before_retry is not None:
            settled = await before_retry(last, budget.remaining())
            if settled is not None:
                return settled


def deadline_exceeded(what: str, tries: int, last: TransientError | None) -> DeadlineExceeded:
    """The error for `what` giving up after `tries`, caused by `last` (None: never tried)."""
    if last is None:
        error = DeadlineExceeded(f"{what}: the deadline had passed before the first try")
    else:
        error = DeadlineExceeded(
            f"{what}: gave up after {tries} tr{'y' if tries == 1 else 'ies'} "
            f"within the deadline; last error: {last}",
            last,
        )
    error.__cause__ = last
    return error
