"""Helpers shared by the Numerai client's tests."""

from __future__ import annotations

from collections.abc import Iterator

from numerai_autopilot.numerai import RetryPolicy
from numerai_autopilot.sandbox.testing import RunningSandbox

# Quick retries so fault tests finish fast; the window still allows many tries.
FAST_RETRY = RetryPolicy(initial=0.01, maximum=0.05, jitter=0.5, deadline_s=10.0)
# For tests that expect giving up: a short window.
SHORT_RETRY = RetryPolicy(initial=0.01, maximum=0.05, jitter=0.5, deadline_s=0.5)


def chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and every cause/context below it."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def assert_no_secret(exc: BaseException, secret: str) -> None:
    """Neither the error nor anything chained to it mentions the secret key."""
    for link in chain(exc):
        for text in (str(link), repr(link), *map(str, link.args)):
            assert secret not in text, f"{type(link).__name__} leaks the secret: {text}"


def classic_csv(sandbox: RunningSandbox, round_number: int) -> bytes:
    """A valid Classic submission for the round: every live id, varied predictions."""
    ids = sorted(sandbox.sandbox.data.live_ids(round_number))
    rows = [f"{id_},{(i % 97 + 1) / 100:.2f}" for i, id_ in enumerate(ids)]
    return ("id,prediction\n" + "\n".join(rows) + "\n").encode()


def signals_csv(sandbox: RunningSandbox, tournament: int, key: str, count: int = 150) -> bytes:
    """A valid Signals/Crypto submission of the current round's universe, keyed by ``key``."""
    round_number = sandbox.sandbox.latest_round(tournament).number
    tickers = sorted(sandbox.sandbox.data.round_keys(tournament, round_number))[:count]
    rows = [f"{t},{(i % 89 + 1) / 100:.2f}" for i, t in enumerate(tickers)]
    return (f"{key},signal\n" + "\n".join(rows) + "\n").encode()
