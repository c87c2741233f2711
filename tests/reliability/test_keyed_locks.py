"""KeyedLocks: one holder per key at a time, and no lock left behind once a key is free."""

from __future__ import annotations

import asyncio

import pytest

from numerai_autopilot.runs.locks import KeyedLocks


async def test_holders_of_one_key_take_turns_and_other_keys_do_not_wait() -> None:
    locks: KeyedLocks[tuple[str, int]] = KeyedLocks()
    inside: list[str] = []
    most = 0

    async def hold(key: tuple[str, int], name: str) -> None:
        nonlocal most
        async with locks.hold(key):
            inside.append(name)
            most = max(most, sum(1 for n in inside if n.startswith(key[0])))
            await asyncio.sleep(0.01)
            inside.remove(name)

    other_done = asyncio.Event()

    async def other() -> None:
        async with locks.hold(("b", 1)):
            other_done.set()

    async with asyncio.timeout(5):
        first = asyncio.create_task(hold(("a", 1), "a-first"))
        await asyncio.sleep(0)  # it holds ("a", 1) now
        rest = [asyncio.create_task(hold(("a", 1), f"a-{i}")) for i in range(3)]
        await asyncio.sleep(0)
        assert len(locks) == 1  # one entry for the holder and its three waiters
        await asyncio.create_task(other())
        assert other_done.is_set() and not first.done()  # ("b", 1) did not wait for ("a", 1)
        await asyncio.gather(first, *rest)
    assert most == 1
    assert len(locks) == 0


async def test_a_key_is_dropped_after_a_failure_or_a_cancelled_wait() -> None:
    locks: KeyedLocks[str] = KeyedLocks()
    with pytest.raises(RuntimeError, match="boom"):
        async with locks.hold("k"):
            raise RuntimeError("boom")
    assert len(locks) == 0

    release = asyncio.Event()

    async def holder() -> None:
        async with locks.hold("k"):
            await release.wait()

    async def waiter() -> None:
        async with locks.hold("k"):
            raise AssertionError("never reached: cancelled while waiting")

    async with asyncio.timeout(5):
        held = asyncio.create_task(holder())
        await asyncio.sleep(0)
        waiting = asyncio.create_task(waiter())
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert len(locks) == 1  # the holder's
        release.set()
        await held
    assert len(locks) == 0


async def test_many_rounds_leave_no_locks() -> None:
    """As the pipeline uses it: a key per (model, round), 200 models, 20 rounds."""
    locks: KeyedLocks[tuple[str, int]] = KeyedLocks()

    async def upload(model: str, number: int) -> None:
        async with locks.hold((model, number)):
            await asyncio.sleep(0)

    for number in range(20):
        await asyncio.gather(*(upload(f"model-{i}", number) for i in range(200)))
    assert len(locks) == 0
