"""Dashboard sign-in: signed session cookies (itsdangerous) and a CSRF token on every form.

Who may sign in:
- with `server.admin_token`: anyone presenting it (user "admin");
- with `server.dashboard_user` and `dashboard_password` (or `dashboard_password_hash`);
- with neither configured: clients on this machine only, without a form (as the JSON API).

The cookie holds the user, a proof of the credential used (an HMAC of it: changing the token
or the password ends every session) and the session's CSRF token; it is signed with a key
derived from `server.secret`, HttpOnly and SameSite=Lax, and lasts `MAX_AGE_S`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

from fastapi import HTTPException, Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from numerai_autopilot.config import AppConfig
from numerai_autopilot.errors import ConfigError
from numerai_autopilot.web.auth import LOOPBACK
from numerai_autopilot.web.dashboard.passwords import is_password_hash, verify_password

COOKIE = "autopilot_session"
MAX_AGE_S = 12 * 3600
_FAILED_LOGIN_DELAY_S = 0.5


@dataclass(frozen=True)
class Session:
    """What the cookie carries; `user` is None until signed in."""

    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    user: str | None = None
    proof: str | None = None
    flash: str | None = None


class Sessions:
    """Reads and writes sessions, checks credentials and CSRF tokens for one app.

    :raises ConfigError: without `server.secret` (the signing key), with
        `server.dashboard_user` but no password, or with a `dashboard_password_hash` that
        is not one.
    """

    def __init__(self, config: AppConfig) -> None:
        server = config.server
        if server.secret is None:
            raise ConfigError(f"{config.source}: server.secret: required to sign sessions")
        self._key = hmac.new(server.secret.get_secret_value().encode(), b"dashboard-session",
                             hashlib.sha256).digest()
        self._signer = URLSafeTimedSerializer(self._key, salt="autopilot-session")
        self._token = server.admin_token.get_secret_value() if server.admin_token else None
        self._user = server.dashboard_user
        secret = server.dashboard_password_hash or server.dashboard_password
        self._password = secret.get_secret_value() if secret else None
        if self._user and not self._password:
            raise ConfigError(f"{config.source}: server.dashboard_user: set dashboard_password "
                              "or dashboard_password_hash as well")
        if server.dashboard_password_hash and not is_password_hash(self._password or ""):
            raise ConfigError(f"{config.source}: server.dashboard_password_hash: not a hash from "
                              "`python -m numerai_autopilot.web.dashboard.passwords`")
        self._hashed = server.dashboard_password_hash is not None

    @property
    def open_locally(self) -> bool:
        """No credential is configured: loopback clients need no sign-in."""
        return self._token is None and self._user is None

    def load(self, request: Request) -> Session:
        """The request's session; a fresh one when the cookie is missing, forged or expired."""
        raw = request.cookies.get(COOKIE)
        if raw:
            try:
                data: dict[str, Any] = self._signer.loads(raw, max_age=MAX_AGE_S)
                return Session(csrf=str(data["c"]), user=data.get("u"), proof=data.get("p"),
                               flash=data.get("f"))
            except (BadSignature, KeyError, TypeError):
                pass
        return Session()

    def save(self, response: Response, request: Request, session: Session) -> None:
        """Set the signed cookie on `response` (Secure when the request came over HTTPS)."""
        value = self._signer.dumps({"c": session.csrf, "u": session.user, "p": session.proof,
                                    "f": session.flash})
        secure = request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"
        response.set_cookie(COOKIE, value, max_age=MAX_AGE_S, httponly=True, samesite="lax",
                            secure=secure, path="/")

    def user(self, request: Request, session: Session) -> str | None:
        """The signed-in user, or None."""
        if self.open_locally:
            host = request.client.host if request.client else ""
            return "local" if host in LOOPBACK else None
        if session.user and session.proof and hmac.compare_digest(
            session.proof, self._proof(session.user)
        ):
            return session.user
        return None

    def signed_in(self, request: Request) -> bool:
        """Whether the request's cookie is a signed-in session's (`web.auth` lets it read)."""
        return COOKIE in request.cookies and self.user(request, self.load(request)) is not None

    async def sign_in(self, user: str, password: str) -> Session | None:
        """A signed-in session (fresh CSRF token), or None after a short delay."""
        name: str | None = None
        if not user and self._token and hmac.compare_digest(password.encode(), self._token.encode()):
            name = "admin"
        elif (user and self._user and hmac.compare_digest(user.encode(), self._user.encode())
              and await asyncio.to_thread(self._password_ok, password)):
            name = user
        if name is None:
            await asyncio.sleep(_FAILED_LOGIN_DELAY_S)  # slows guessing a little
            return None
        return Session(user=name, proof=self._proof(name))

    def _password_ok(self, password: str) -> bool:
        if self._password is None:
            return False
        if self._hashed:
            return verify_password(password, self._password)
        return hmac.compare_digest(password.encode(), self._password.encode())

    def _proof(self, user: str) -> str:
        credential = self._token if user == "admin" and self._token else f"{user}:{self._password}"
        return hmac.new(self._key, f"proof:{credential}".encode(), hashlib.sha256).hexdigest()[:32]

    @staticmethod
    def check_csrf(session: Session, form_token: object) -> None:
        """403 unless the form's token is this session's (stops cross-site form posts)."""
        if not isinstance(form_token, str) or not hmac.compare_digest(
            form_token.encode(), session.csrf.encode()
        ):
            raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")

