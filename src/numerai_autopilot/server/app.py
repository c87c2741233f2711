"""The server's app factory: `create_app(config)` builds everything from the settings.

    app = create_app(load_config(Path("autopilot.toml")))
    uvicorn.run(app, host="127.0.0.1", port=8000)
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from numerai_autopilot import __version__
from numerai_autopilot.config import AppConfig
from numerai_autopilot.errors import ConfigError
from numerai_autopilot.runtime import Runtime
from numerai_autopilot.server import api, webhook

log = logging.getLogger(__name__)


def create_app(config: AppConfig, *, runtime: Runtime | None = None) -> FastAPI:
    """Build the ASGI app; its lifespan opens (and closes) the runtime."""
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
        try:
            yield
        finally:
            await rt.close()

    app = FastAPI(
        title="numerai-autopilot",
        version=__version__,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.config = config
    app.include_router(webhook.router)
    app.include_router(api.router)
    return app
