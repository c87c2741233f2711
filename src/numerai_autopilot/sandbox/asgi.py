"""The sandbox as an ASGI app: Numerai's GraphQL at ``POST /``, file URLs, control API.

    app = create_app(SandboxSettings(data_dir=Path("sandbox-data")))
    app.state.sandbox   # the Sandbox: rounds, submissions, downloads, webhooks, faults
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from . import control, files, graphql_api
from .injection import TRANSPORT_KEY, FaultMiddleware
from .settings import SandboxSettings
from .state import Sandbox


class SandboxApp(Starlette):
    """Starlette, plus a handle on the client's socket so faults can drop connections.

    uvicorn's ``send`` is a bound method of its per-request cycle, which holds the transport;
    Starlette's own middleware wraps ``send``, so it must be looked at here, outermost.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[TRANSPORT_KEY] = getattr(getattr(send, "__self__", None), "transport", None)
        await super().__call__(scope, receive, send)


async def _home(request: Request) -> Response:
    return PlainTextResponse(
        "numerai-autopilot sandbox: a local stand-in for https://api-tournament.numer.ai\n"
        "POST GraphQL to this URL; control API under /_sandbox/ (see /_sandbox/state)\n"
    )


def create_app(settings: SandboxSettings | None = None, *, sandbox: Sandbox | None = None
               ) -> SandboxApp:
    """Build the app from settings (generating data if needed) or from a ready Sandbox."""
    if sandbox is None:
        if settings is None:
            raise TypeError("create_app needs settings or a sandbox")
        sandbox = Sandbox.create(settings)
    ready: Sandbox = sandbox

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await ready.webhooks.aclose()

    routes = [
        Route("/", graphql_api.endpoint, methods=["POST"]),
        Route("/", _home, methods=["GET"]),
        Route("/files/{path:path}", files.download, methods=["GET", "HEAD"]),
        Route("/uploads/{path:path}", files.upload, methods=["PUT"]),
        *control.ROUTES,
    ]
    app = SandboxApp(
        routes=routes, lifespan=lifespan,
        middleware=[Middleware(FaultMiddleware, faults=ready.faults)],
    )
    app.state.sandbox = ready
    return app
