"""Password hashes for `server.dashboard_password_hash` (PBKDF2-SHA256, standard library).

    $ python -m numerai_autopilot.web.dashboard.passwords        # asks for a password, prints the hash
    $ printf '%s\n' "$PASSWORD" | python -m numerai_autopilot.web.dashboard.passwords   # or reads stdin
    >>> verify_password("s3cret", hash_password("s3cret", iterations=1000))
    True
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

ITERATIONS = 600_000
_SCHEME = "pbkdf2_sha256"


def hash_password(password: str, *, iterations: int = ITERATIONS) -> str:
    """`pbkdf2_sha256$ITERATIONS$SALT$HASH` (salt and hash in URL-safe base64)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"{_SCHEME}${iterations}${_b64(salt)}${_b64(digest)}"


def is_password_hash(value: str) -> bool:
    """Whether `value` has the form `hash_password` gives."""
    parts = value.split("$")
    return len(parts) == 4 and parts[0] == _SCHEME and parts[1].isdigit()


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches the hash `stored` (constant-time comparison)."""
    if not is_password_hash(stored):
        return False
    _, iterations, salt, digest = stored.split("$")
    try:
        expected = base64.urlsafe_b64decode(digest + "==")
        actual = hashlib.pbkdf2_hmac(
            "sha256", password.encode(), base64.urlsafe_b64decode(salt + "=="), int(iterations)
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")

