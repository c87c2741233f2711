"""Fixtures for alert tests: a local HTTP receiver for apprise's json:// URLs."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from numerai_autopilot.sandbox.testing import serve_asgi

sys.path.insert(0, str(Path(__file__).parents[1] / "dashboard"))  # app_harness


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


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    holder: list[Receiver] = []

    async def alerts(request: Request) -> JSONResponse:
        holder[0].add(await request.json())
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/alerts", alerts, methods=["POST"])])
    with serve_asgi(app) as base:
        holder.append(Receiver(base))
        yield holder[0]
