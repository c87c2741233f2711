"""A local HTTP receiver for apprise's json:// URLs (served by tests/alerts/conftest.py)."""

from __future__ import annotations

import threading
import time
from typing import Any


class Receiver:
    """Collects what apprise POSTs; `url` is the json:// URL to configure."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.url = "json://" + base.removeprefix("http://") + "/alerts"
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def add(self, body: dict[str, Any]) -> None:
        with self._lock:
            self.received.append(body)

    def wait(self, count: int, timeout: float = 30.0, match: str = "") -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                found = [b for b in self.received if match in b.get("title", "")]
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"{count} alerts matching {match!r} not received: {self.received}")
