"""Who may read the JSON API and act as admin.

- With `server.admin_token` set: requests must carry `Authorization: Bearer <token>`
  (compared in constant time), or, to read (GET), a signed-in dashboard session's cookie.
- Without one: only clients on this machine (127.0.0.1 / ::1) are let in, so a server that
  is reachable from elsewhere never exposes its runs by accident.
"""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request

from numerai_autopilot.config import AppConfig

LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def is_admin(request: Request) -> bool:
    """True when the request carries the admin token (or, with none set, comes from loopback)."""
    config: AppConfig = request.app.state.config
    expected = config.server.admin_token
    if expected is None:
        client = request.client.host if request.client else ""
        return client in LOOPBACK
    presented = bearer_token(request)
    if presented is None:  # a cookie may read, never change, what the token guards
        dashboard = getattr(request.app.state, "dashboard", None)  # `web.dashboard.install`
        return (request.method in ("GET", "HEAD") and dashboard is not None
                and bool(dashboard.sessions.signed_in(request)))
    return hmac.compare_digest(presented.encode(), expected.get_secret_value().encode())


async def require_admin(request: Request) -> None:
    """FastAPI dependency for `/metrics`, the JSON API and admin actions.

    :raises HTTPException: 401 (with `WWW-Authenticate: Bearer`) unless `is_admin`.
    """
    if not is_admin(request):
        raise HTTPException(
            status_code=401,
            detail="admin token required: pass `Authorization: Bearer <server.admin_token>`",
            headers={"WWW-Authenticate": "Bearer"},
        )
