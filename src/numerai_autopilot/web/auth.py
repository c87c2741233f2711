"""Who may read the JSON API and `/metrics`, and act as admin: always someone with a credential.

- `Authorization: Bearer <server.admin_token>` (compared in constant time) may do anything;
- a signed-in dashboard session's cookie may read (GET, HEAD);
- `/metrics` is open to anyone only with `server.metrics_public = true` (for a scraper that
  cannot send a token).

Nothing is granted by where a request seems to come from: a request from 127.0.0.1 may be a
reverse proxy's or a DNS-rebound browser page's.
"""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request

from numerai_autopilot.config import AppConfig


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def is_admin(request: Request) -> bool:
    """True when the request carries the admin token, or reads with a signed-in session."""
    config: AppConfig = request.app.state.config
    presented = bearer_token(request)
    if presented is None:  # a cookie may read, never change, what the token guards
        dashboard = getattr(request.app.state, "dashboard", None)  # `web.dashboard.install`
        return (request.method in ("GET", "HEAD") and dashboard is not None
                and bool(dashboard.sessions.signed_in(request)))
    expected = config.server.admin_token
    return expected is not None and hmac.compare_digest(
        presented.encode(), expected.get_secret_value().encode()
    )


async def require_admin(request: Request) -> None:
    """FastAPI dependency for the JSON API and admin actions.

    :raises HTTPException: 401 (with `WWW-Authenticate: Bearer`) unless `is_admin`.
    """
    if not is_admin(request):
        raise HTTPException(
            status_code=401,
            detail="admin token required: pass `Authorization: Bearer <server.admin_token>`, "
                   "or sign in to the dashboard",
            headers={"WWW-Authenticate": "Bearer"},
        )


async def require_metrics_reader(request: Request) -> None:
    """FastAPI dependency for `/metrics`: `require_admin`, unless `server.metrics_public`."""
    config: AppConfig = request.app.state.config
    if not config.server.metrics_public:
        await require_admin(request)
