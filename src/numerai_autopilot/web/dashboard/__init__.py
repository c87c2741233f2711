"""The web dashboard: round grid, run and model pages, admin actions, behind a sign-in.

    install(app, config)    # routes, static files, session middleware for the JSON API
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from numerai_autopilot.config import AppConfig
from numerai_autopilot.web.dashboard import actions, api, routes
from numerai_autopilot.web.dashboard.pages import PACKAGE, Dashboard, LoginRequired, login_redirect
from numerai_autopilot.web.dashboard.session import ApiSession


def install(app: FastAPI, config: AppConfig) -> None:
    """Add the dashboard to `app` (built by `server.create_app`)."""
    dash = Dashboard(config)
    app.state.dashboard = dash
    app.include_router(routes.router)
    app.include_router(actions.router)
    app.include_router(api.metrics_router)
    app.mount("/static", StaticFiles(directory=str(PACKAGE / "static")), name="static")
    app.add_middleware(ApiSession, sessions=dash.sessions)

    async def needs_login(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        return login_redirect(exc)

    app.add_exception_handler(LoginRequired, needs_login)


__all__ = ["install"]
