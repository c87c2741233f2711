"""Dashboard sign-in: signed session cookies, the signed-in sessions this process holds, and
a CSRF token on every form.

Who may sign in (nobody without a credential: there is no open mode):
- with `server.admin_token`: anyone presenting it (user "admin");
- with `server.dashboard_user` and `dashboard_password_hash` (or a plaintext
  `dashboard_password`): that user;
- with a `login_code` (what `autopilot serve` prints on loopback when neither is configured):
  whoever opens `/login?code=...` first (user "local"); the code then stops working.

The cookie (signed with a key derived from `server.secret`; HttpOnly, SameSite=Lax, at most
`MAX_AGE_S`) carries the session's CSRF token and, once signed in, the user and a random
session id. A session is signed in only while this process holds its id: signing out drops
it, so a saved copy of the cookie no longer works. The ids live in memory, so a restart
(which is how a new token or password takes effect) ends every session, and behind several
instances each asks for its own sign-in.

Sign-in attempts are throttled per client address and per account (`throttle`), counted
before the password is checked; passwords are hashed in a one-thread pool of their own with
a bounded queue, and a wrong user name costs the same hash as a wrong password.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from fastapi import HTTPException, Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from numerai_autopilot.config import AppConfig
from numerai_autopilot.errors import ConfigError
from numerai_autopilot.web.dashboard.passwords import is_password_hash, verify_password
from numerai_autopilot.web.dashboard.throttle import Throttle, TooManySignIns

log = logging.getLogger(__name__)
COOKIE = "autopilot_session"
MAX_AGE_S = 12 * 3600
MAX_SESSIONS = 1000
# Failed sign-ins allowed within the window: per client address, and per account (higher,
# so guesses from elsewhere slow an attack on the account without locking its owner out).
ADDRESS_LIMIT, ACCOUNT_LIMIT, WINDOW_S = 5, 20, 600.0
_MAX_HASHING = 4  # password checks running or queued at once


def new_login_code() -> str:
    """A random one-time sign-in code (for `Sessions(login_code=...)`)."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Session:
    """What the cookie carries; `user` and `sid` are None until signed in."""

    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    user: str | None = None
    sid: str | None = None
    flash: str | None = None


class Sessions:
    """Reads and writes sessions, signs users in and out, checks CSRF tokens for one app.

    :param login_code: a one-time code that signs in as "local" at `/login?code=...`.
    :raises ConfigError: without `server.secret` (the signing key), with
        `server.dashboard_user` but no password, or with a `dashboard_password_hash` that
        is not one.
    """

    def __init__(self, config: AppConfig, *, login_code: str | None = None) -> None:
        server = config.server
        if server.secret is None:
            raise ConfigError(f"{config.source}: server.secret: required to sign sessions")
        key = hmac.new(server.secret.get_secret_value().encode(), b"dashboard-session",
                       hashlib.sha256).digest()
        self._signer = URLSafeTimedSerializer(key, salt="autopilot-session")
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
        if self._user and not self._hashed:
            log.warning("%s: server.dashboard_password is stored in plain text; store a hash "
                        "instead: run `python -m numerai_autopilot.web.dashboard.passwords`, "
                        "set server.dashboard_password_hash and remove dashboard_password",
                        config.source)
        self._login_code = login_code
        self._active: dict[str, tuple[str, float]] = {}  # session id -> (user, expiry)
        self._by_address = Throttle(limit=ADDRESS_LIMIT, window_s=WINDOW_S)
        self._by_account = Throttle(limit=ACCOUNT_LIMIT, window_s=WINDOW_S)
        self._hashing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dashboard-password")
        self._waiting = 0

    @property
    def configured(self) -> bool:
        """Whether an admin token or a dashboard user is configured."""
        return self._token is not None or self._user is not None

    def load(self, request: Request) -> Session:
        """The request's session; a fresh one when the cookie is missing, forged or expired."""
        raw = request.cookies.get(COOKIE)
        if raw:
            try:
                data: dict[str, Any] = self._signer.loads(raw, max_age=MAX_AGE_S)
                return Session(csrf=str(data["c"]), user=data.get("u"), sid=data.get("s"),
                               flash=data.get("f"))
            except (BadSignature, KeyError, TypeError):
                pass
        return Session()

    def save(self, response: Response, request: Request, session: Session) -> None:
        """Set the signed cookie on `response` (Secure when the request came over HTTPS)."""
        value = self._signer.dumps({"c": session.csrf, "u": session.user, "s": session.sid,
                                    "f": session.flash})
        secure = request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"
        response.set_cookie(COOKIE, value, max_age=MAX_AGE_S, httponly=True, samesite="lax",
                            secure=secure, path="/")

    def user(self, session: Session) -> str | None:
        """The signed-in user, or None (never signed in, signed out, or expired)."""
        if session.sid is None or session.user is None:
            return None
        active = self._active.get(session.sid)
        if active is None or active[1] < time.monotonic():
            return None
        return active[0] if active[0] == session.user else None

    def signed_in(self, request: Request) -> bool:
        """Whether the request's cookie is a signed-in session's (`web.auth` lets it read)."""
        return COOKIE in request.cookies and self.user(self.load(request)) is not None

    async def sign_in(self, user: str, password: str, address: str) -> Session | None:
        """A signed-in session (fresh CSRF token), or None when the credential is wrong.

        An empty `user` means `password` is the admin token.

        :raises TooManySignIns: `address` or the account failed too often lately, or too
            many passwords are being checked at once; nothing was checked.
        """
        keys_address, keys_account = [f"address {address}"], [f"account {user or 'admin'}"]
        self._by_address.begin(keys_address)
        try:
            self._by_account.begin(keys_account)
        except TooManySignIns:
            self._by_address.forgive(keys_address)
            raise
        try:
            name = await self._check(user, password)
        except BaseException:
            self._by_address.forgive(keys_address)
            self._by_account.forgive(keys_account)
            raise
        if name is None:
            log.warning("dashboard: failed sign-in from %s", address)
            return None
        self._by_address.forgive(keys_address)
        self._by_account.forgive(keys_account)
        return self._start(name)

    def redeem(self, code: str) -> Session | None:
        """A session signed in as "local" for the one-time login code, which then stops
        working; None for any other code."""
        expected = self._login_code
        if expected is None or not hmac.compare_digest(code.encode(), expected.encode()):
            return None
        self._login_code = None
        return self._start("local")

    def sign_out(self, session: Session) -> None:
        """End `session`: its cookie, even a saved copy, is no longer signed in."""
        if session.sid is not None:
            self._active.pop(session.sid, None)

    def close(self) -> None:
        """Stop the password pool's thread."""
        self._hashing.shutdown(wait=False, cancel_futures=True)

    async def _check(self, user: str, password: str) -> str | None:
        if not user:
            token = self._token
            ok = token is not None and hmac.compare_digest(password.encode(), token.encode())
            return "admin" if ok else None
        if self._user is None or self._password is None:
            return None
        # The password is checked whatever the user name, so a wrong name costs the same.
        right_user = hmac.compare_digest(user.encode(), self._user.encode())
        right_password = await self._password_ok(password, self._password)
        return user if right_user and right_password else None

    async def _password_ok(self, password: str, stored: str) -> bool:
        if not self._hashed:
            return hmac.compare_digest(password.encode(), stored.encode())
        if self._waiting >= _MAX_HASHING:
            raise TooManySignIns(1, "sign-ins at once")
        self._waiting += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._hashing, verify_password, password, stored)
        finally:
            self._waiting -= 1

    def _start(self, user: str) -> Session:
        now = time.monotonic()
        if len(self._active) >= MAX_SESSIONS:  # drop expired sessions, then the oldest
            self._active = {s: a for s, a in self._active.items() if a[1] >= now}
            for sid in list(self._active)[: len(self._active) - MAX_SESSIONS + 1]:
                del self._active[sid]
        sid = secrets.token_urlsafe(24)
        self._active[sid] = (user, now + MAX_AGE_S)
        return Session(user=user, sid=sid)

    @staticmethod
    def check_csrf(session: Session, form_token: object) -> None:
        """403 unless the form's token is this session's (stops cross-site form posts)."""
        if not isinstance(form_token, str) or not hmac.compare_digest(
            form_token.encode(), session.csrf.encode()
        ):
            raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")
