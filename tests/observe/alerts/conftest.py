"""Fixtures for alert tests: a local HTTP receiver for apprise's json:// URLs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alert_receiver import Receiver
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from numerai_autopilot.sandbox.testing import serve_asgi


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
