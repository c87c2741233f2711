"""The server's app factory: `create_app(config)` builds everything from the settings.

    app = create_app(load_config(Path("autopilot.toml")))
    uvicorn.run(app, host="127.0.0.1", port=8000)
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from numerai_autopilot import __version__
from numerai_autopilot.web import dashboard
from numerai_autopilot.config import AppConfig
from numerai_autopilot.errors import ConfigError
from numerai_autopilot.observe.logs import cloud_trace, current_trace
from numerai_autopilot.runtime import Runtime
from numerai_autopilot.web import api, webhook

log = logging.getLogger(__name__)


def create_app(config: AppConfig, *, runtime: Runtime | None = None,
               freeze_gc: bool = False) -> FastAPI:
    """Build the ASGI app; its lifespan opens (and closes) the runtime.

    `freeze_gc` (for a process that serves only this app, as `autopilot serve` does): once the
    runtime is ready, what start-up made (imports, the app, Dask's cluster) is moved out of
    the garbage collector's reach with `gc.freeze()`. A full collection walked all of it:
    91 ms, seen in the middle of a burst of webhooks.
    """
    if config.server.secret is None:
        raise ConfigError(
            f"{config.source}: server.secret: required to check webhook tokens; set it in the "
            "file or AUTOPILOT_SECRET (e.g. `python3 -c 'import secrets; print(secrets.token_hex(32))'`)"
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = runtime or Runtime(config)
        app.state.runtime = rt
        await rt.open()
        freezer = asyncio.create_task(_freeze_when_ready(rt)) if freeze_gc else None
        try:
            yield
        finally:
            if freezer is not None:
                freezer.cancel()
            await rt.close()

    app = AutopilotApp(
        title="numerai-autopilot",
        version=__version__,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.config = config
    app.include_router(api.router)
    dashboard.install(app, config)  # `/`, its pages and actions, `/metrics`
    app.add_middleware(TraceContext)
    app.add_middleware(RefuseNul)  # outermost last
    app.webhook = RefuseNul(TraceContext(webhook.WebhookEndpoint(
        partial(FastAPI.__call__, app), app.state)))

    def openapi() -> dict[str, Any]:  # the webhook is an ASGI layer, not a FastAPI route
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            schema["paths"] = {webhook.PATH: webhook.WEBHOOK_OPENAPI, **schema["paths"]}
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


async def _freeze_when_ready(runtime: Runtime) -> None:
    await runtime.ready.wait()
    gc.freeze()
    log.debug("start-up objects frozen for the garbage collector: %d", gc.get_freeze_count())


class AutopilotApp(FastAPI):
    """FastAPI, with Numerai's webhooks answered before FastAPI's own per-request work.

    FastAPI runs every request through its middleware stack and (since 0.165) checks for
    OpenTelemetry providers, about 70 µs a request on this machine: most of the server's
    share of answering a burst of 200 round-open webhooks. `/pred/...` goes to `webhook`
    (the same NUL and trace layers, then `server.webhook.WebhookEndpoint`) instead.
    """

    webhook: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.webhook is not None and scope["type"] == "http" and scope["path"].startswith("/pred/"):
            await self.webhook(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


class RefuseNul:
    """ASGI middleware: answer 400 to a URL holding a NUL character.

    No route takes one, and PostgreSQL cannot compare text with one: a run id or model name
    such as `%00` made the ledger query fail, which answered 500.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            "\x00" in scope["path"] or b"%00" in scope["query_string"] or b"\x00" in scope["query_string"]
        ):
            refusal = JSONResponse({"error": "the URL holds a NUL character"}, status_code=400)
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)


class TraceContext:
    """ASGI middleware: tag a request's log lines with its Cloud Trace.

    Cloud Run sends `X-Cloud-Trace-Context: TRACE_ID/SPAN_ID;o=1` (`logs.cloud_trace`).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        header = b""
        if scope["type"] == "http":
            header = dict(scope["headers"]).get(b"x-cloud-trace-context", b"")
        trace = cloud_trace(header)
        if trace is None:
            await self.app(scope, receive, send)
            return
        token = current_trace.set(trace)
        try:
            await self.app(scope, receive, send)
        finally:
            current_trace.reset(token)
