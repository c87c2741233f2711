"""The server's app factory: `create_app(config)` builds the ASGI app from the settings.

    app = create_app(load_config(Path("autopilot.toml")))
    uvicorn.run(app, host="127.0.0.1", port=8000)

The app serves the webhook (`web.webhook`), `/healthz`, `/metrics` and the JSON API
(`web.api`) and the dashboard (`web.dashboard`); its lifespan opens and closes the
`Runtime` that does the work (the routes read it with `web.state.runtime`), so building an
app starts nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from numerai_autopilot import __version__
from numerai_autopilot.config import ENV_FILE, MAKE_ONE, AppConfig
from numerai_autopilot.errors import ConfigError
from numerai_autopilot.logs import cloud_trace, current_trace
from numerai_autopilot.runtime import Runtime
from numerai_autopilot.web import api, dashboard, keepalive, webhook
from numerai_autopilot.web.state import ServerStarting


def create_app(
    config: AppConfig, *, runtime: Runtime | None = None, login_code: str | None = None
) -> FastAPI:
    """Build the ASGI app for `config`.

    :param runtime: the runtime its lifespan opens and closes; by default one made from
        `config` when the app starts (tests and the demo pass their own to look inside).
    :param login_code: a one-time code that signs in to the dashboard at `/login?code=...`
        (`autopilot serve` prints the link; `web.dashboard.session`).
    :raises ConfigError: without `server.secret`, which webhook tokens and dashboard
        sessions need, or with incomplete dashboard credentials.
    """
    if config.server.secret is None:
        raise ConfigError(
            f"{config.source}: server.secret: required to check webhook tokens; set "
            f"AUTOPILOT_SECRET in the environment or the {ENV_FILE} file beside the config "
            f"(`autopilot init` writes one), not in the config; make one with {MAKE_ONE}"
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = runtime or Runtime(config)
        app.state.runtime = service
        await service.open()
        try:
            yield
        finally:
            await service.close()
            app.state.dashboard.sessions.close()

    # No /docs or /redoc: they load their scripts from a CDN (blank offline, and a third
    # party on the admin's pages); the schema is at /openapi.json for any OpenAPI viewer.
    app = FastAPI(title="numerai-autopilot", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    app.state.config = config
    app.add_exception_handler(ServerStarting, _starting)  # type: ignore[arg-type]
    webhook.install(app)  # POST /pred/{model_id}/{token}, /pred/{model_id}?token=
    app.include_router(api.router)  # /healthz, /metrics, /api/...
    app.include_router(keepalive.router)  # POST /internal/keepalive (keep-busy)
    dashboard.install(app, config, login_code=login_code)  # `/`, its pages and forms, /static
    app.add_middleware(TraceContext)
    app.add_middleware(RefuseNul)  # outermost last
    return app


async def _starting(request: Request, exc: ServerStarting) -> JSONResponse:
    return JSONResponse({"error": str(exc)}, status_code=503)


class RefuseNul:
    """ASGI middleware: answer 400 to a URL holding a NUL character (raw or `%00`).

    No route takes one, and PostgreSQL refuses text holding one, so a run id or model name
    such as `%00` would otherwise fail in the ledger as a 500.
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

    Cloud Run sends `X-Cloud-Trace-Context: TRACE_ID/SPAN_ID;o=1`; `observe.cloud_trace`
    parses it and `observe.current_trace` carries it to the JSON log lines.
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
