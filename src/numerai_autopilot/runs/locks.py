"""Asyncio locks by key, each kept only while someone holds it or waits for it.

A long-running server makes a key per (model, round), so locks kept for good would grow by
one per run forever.

    locks: KeyedLocks[tuple[str, int]] = KeyedLocks()
    async with locks.hold(("model-id", 512)):
        ...   # no other holder of this key
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class KeyedLocks(Generic[K]):
    """`async with locks.hold(key):` excludes every other holder of the same key."""

    def __init__(self) -> None:
        self._locks: dict[K, tuple[asyncio.Lock, list[int]]] = {}

    @asynccontextmanager
    async def hold(self, key: K) -> AsyncIterator[None]:
        entry = self._locks.get(key)
        if entry is None:
            entry = self._locks[key] = (asyncio.Lock(), [0])
        lock, users = entry
        users[0] += 1  # holders and waiters: the entry goes once the last of them leaves
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._locks[key]

    def __len__(self) -> int:
        """Keys held or waited for now."""
        return len(self._locks)
