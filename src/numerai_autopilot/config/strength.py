"""What a server secret or admin token must be: at least 32 bytes, not a placeholder.

Whoever knows `server.secret` can forge every model's webhook token, and the admin token
opens the API and the dashboard, so both must be random: a short value, an empty one or a
`CHANGE-ME` left from a template is refused with the way to make a good one. Messages never
contain the value.

    >>> check_secret("Xq3vJ0pLr9Tz_8wKbE2nYh5sMfA7dCgU1oRiVt4lNe6")[:4]
    'Xq3v'
    >>> check_secret("CHANGE-ME")
    Traceback (most recent call last):
    ...
    ValueError: a placeholder, not a secret; make one with python -c "import secrets; print(secrets.token_urlsafe(32))"
"""

from __future__ import annotations

import re

MIN_BYTES = 32
MAKE_ONE = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'
# Words of templates and examples (compared lower case, letters and digits only); long
# enough that a random value never contains one by chance.
_PLACEHOLDERS = ("changeme", "replaceme", "yoursecret", "yourtoken", "placeholder")
# A random value of 32 bytes or more has far more distinct characters than this.
_MIN_DISTINCT = 8


def check_secret(value: str) -> str:
    """`value` when it is fit to sign webhook tokens or guard the API; else ValueError
    saying why (empty, a placeholder, too short) and how to make one."""
    letters = re.sub(r"[^a-z0-9]", "", value.lower())
    if not value.strip():
        raise ValueError(f"empty; make one with {MAKE_ONE}")
    if any(word in letters for word in _PLACEHOLDERS):
        raise ValueError(f"a placeholder, not a secret; make one with {MAKE_ONE}")
    size = len(value.encode())
    if size < MIN_BYTES:
        raise ValueError(f"{size} bytes, too short to be safe: it needs at least {MIN_BYTES} "
                         f"random bytes; make one with {MAKE_ONE}")
    if len(set(value)) < _MIN_DISTINCT:
        raise ValueError(f"a placeholder, not a secret (hardly any different characters); "
                         f"make one with {MAKE_ONE}")
    return value


def check_secrets(values: list[str]) -> list[str]:
    """`values` when each passes `check_secret`; else ValueError naming the entry (from 1)."""
    for number, value in enumerate(values, start=1):
        try:
            check_secret(value)
        except ValueError as exc:
            raise ValueError(f"entry {number}: {exc}") from None
    return values
