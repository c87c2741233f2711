"""The web dashboard: round grid, run and model pages, admin actions, behind a sign-in.

    install(app, config, login_code=new_login_code())   # pages, forms, static files

`routes` serves the pages, `actions` the forms, `views` computes what they show, `pages`
renders them, `session` signs users in and `throttle` counts failed sign-ins (see each
module for its rules); `hash_password` makes a `server.dashboard_password_hash`.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from numerai_autopilot.config import AppConfig
from numerai_autopilot.web.dashboard import actions, routes
from numerai_autopilot.web.dashboard.pages import PACKAGE, Dashboard, LoginRequired, login_redirect
from numerai_autopilot.web.dashboard.passwords import hash_password, verify_password
from numerai_autopilot.web.dashboard.session import new_login_code


def install(app: FastAPI, config: AppConfig, *, login_code: str | None = None) -> None:
    """Add the dashboard's routes and `/static` to `app` (built by `web.create_app`); its
    signed-in sessions may then read `/api` and `/metrics` (`web.auth.is_admin`).

    :param login_code: a one-time code that signs in at `/login?code=...` (see `session`).
    :raises ConfigError: `server.secret` is missing, or the dashboard's credentials are
        incomplete (`server.dashboard_user` without a password).
    """
    dash = Dashboard(config, login_code=login_code)
    app.state.dashboard = dash
    app.include_router(routes.router)
    app.include_router(actions.router)
    app.mount("/static", StaticFiles(directory=str(PACKAGE / "static")), name="static")
    app.add_exception_handler(LoginRequired, login_redirect)


__all__ = ["hash_password", "install", "new_login_code", "verify_password"]
