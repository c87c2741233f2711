"""Failed sign-ins, counted per key (a client address, an account): after `limit` failures
within `window_s` seconds, a key's attempts are refused until its oldest failure ages out.

    throttle = Throttle(limit=5, window_s=600)
    throttle.begin(["address 10.0.0.7", "account ada"])   # TooManySignIns, or counted
    ...                                                   # check the password
    throttle.forgive(["address 10.0.0.7", "account ada"]) # it was right: not a failure

An attempt counts as a failure from the moment it begins, so guesses sent at the same time
are counted too; `forgive` takes a successful one back. The counts live in this process (a
restart forgets them) and in at most `MAX_KEYS` keys.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence

MAX_KEYS = 10_000


class TooManySignIns(Exception):
    """Refused before any check: `retry_after` seconds until an attempt is counted again."""

    def __init__(self, retry_after: float, what: str = "failed sign-ins") -> None:
        self.retry_after = max(1, math.ceil(retry_after))
        super().__init__(f"Too many {what}; try again in {self.retry_after} s.")


class Throttle:
    """Failure times per key, within a sliding window."""

    def __init__(self, *, limit: int, window_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def begin(self, keys: Sequence[str]) -> None:
        """Count an attempt for every key, unless one of them is over its limit.

        :raises TooManySignIns: with the longest wait among the keys over their limit.
        """
        now = self._clock()
        wait = 0.0
        for key in keys:
            times = self._recent(key, now)
            if len(times) >= self.limit:
                wait = max(wait, times[0] + self.window_s - now)
        if wait > 0:
            raise TooManySignIns(wait)
        if len(self._failures) >= MAX_KEYS:
            self._prune(now)
        for key in keys:
            self._failures.setdefault(key, deque()).append(now)

    def forgive(self, keys: Sequence[str]) -> None:
        """Take back the latest attempt counted for each key (it succeeded)."""
        for key in keys:
            times = self._failures.get(key)
            if times:
                times.pop()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def _prune(self, now: float) -> None:
        """Drop keys with no failure in the window; then the oldest keys beyond `MAX_KEYS`."""
        for key in [k for k in self._failures if not self._recent(k, now)]:
            del self._failures[key]
        for key in list(self._failures)[: max(0, len(self._failures) - MAX_KEYS + 1)]:
            del self._failures[key]
