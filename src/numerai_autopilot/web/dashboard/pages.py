"""Rendering shared by the dashboard's routes: sign-in checks, templates, security headers.

    dash = dashboard(request)
    user, session = dash.require_user(request)          # raises LoginRequired
    return dash.render(request, "run.html", {"run": run}, session, user)

Every answer carries `SECURITY_HEADERS` (no framing, no inline scripts, no caching); the
templates and static files are those of the `numerai_autopilot.web` package.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from numerai_autopilot.config import AppConfig
from numerai_autopilot.web.dashboard.health import format_figure
from numerai_autopilot.web.dashboard.session import Session, Sessions
from numerai_autopilot.web.dashboard.views import countdown, duration

PACKAGE = Path(str(files("numerai_autopilot.web")))
POLL_MS = 2000
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class LoginRequired(Exception):
    """The request needs a signed-in user; `fragment` requests get a 401 instead."""

    def __init__(self, path: str, fragment: bool) -> None:
        super().__init__(path)
        self.path = path
        self.fragment = fragment


class Dashboard:
    """The dashboard's per-app state: sessions and templates."""

    def __init__(self, config: AppConfig, *, login_code: str | None = None) -> None:
        self.config = config
        self.sessions = Sessions(config, login_code=login_code)
        self.templates = Jinja2Templates(directory=str(PACKAGE / "templates"))
        env = self.templates.env
        env.filters.update(duration=duration, when=_when, clock=_clock, figure=format_figure)
        env.globals.update(countdown=countdown, poll_ms=POLL_MS,
                           token_login=config.server.admin_token is not None,
                           user_login=config.server.dashboard_user is not None)

    def require_user(self, request: Request, *, fragment: bool = False) -> tuple[str, Session]:
        """The signed-in user and the session; raises LoginRequired (a redirect to the sign-in
        page, or a 401 for a `fragment`) without one."""
        session = self.sessions.load(request)
        user = self.sessions.user(session)
        if user is None:
            raise LoginRequired(request.url.path, fragment)
        return user, session

    def render(
        self,
        request: Request,
        template: str,
        context: dict[str, Any],
        session: Session,
        user: str | None,
        *,
        status: int = 200,
        fragment: bool = False,
    ) -> Response:
        """`template` with `context` plus what every page uses (user, CSRF token, the time,
        the one-time message, which a full page consumes); a `fragment` keeps the cookie as
        it is."""
        now = datetime.now(UTC)
        context = {**context, "csrf": session.csrf, "user": user, "now": now,
                   "flash": None if fragment else session.flash}
        response = self.templates.TemplateResponse(request, template, context, status_code=status)
        if not fragment:
            self.sessions.save(response, request, replace(session, flash=None))
        return secured(response)

    def redirect(self, request: Request, to: str, session: Session, flash: str | None) -> Response:
        """A 303 to `to`, leaving `flash` for the page it lands on."""
        response = RedirectResponse(to, status_code=303)
        self.sessions.save(response, request, replace(session, flash=flash))
        return secured(response)


def dashboard(request: Request) -> Dashboard:
    """The app's dashboard (`install` put it on `app.state`)."""
    dash: Dashboard = request.app.state.dashboard
    return dash


def secured(response: Response) -> Response:
    """`response` with `SECURITY_HEADERS`."""
    response.headers.update(SECURITY_HEADERS)
    return response


async def login_redirect(request: Request, exc: Exception) -> Response:
    """The handler of LoginRequired: to the sign-in page and back, or a 401 notice for a
    fragment (the page around it then offers to sign in again)."""
    assert isinstance(exc, LoginRequired)
    if exc.fragment:
        return secured(HTMLResponse(
            '<p class="notice">Signed out: <a href="/login">sign in again</a>.</p>',
            status_code=401,
        ))
    return secured(RedirectResponse(f"/login?next={quote(exc.path)}", status_code=303))


def safe_next(value: object) -> str:
    """Only a path on this site (no `//host` or scheme): no open redirect after sign-in."""
    text = value if isinstance(value, str) else "/"
    if not text.startswith("/") or text.startswith("//") or "\\" in text:
        return "/"
    return text


def _when(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _clock(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).strftime("%H:%M:%S")
