"""Per-model webhook tokens.

Numerai can neither sign a webhook nor send a header, so the URL carries the secret:
`token = HMAC-SHA256(server secret, model id)`, in the path (`/pred/{id}/{token}`: whether
Numerai keeps a registered URL's query string is not documented; the server still accepts
`/pred/{id}?token=...` for URLs registered that way). Tokens are compared in constant time,
and tokens made with a previous secret keep working during a rotation's grace period.

    >>> token = webhook_token("s3cret", "8a4b...")
    >>> verify_token(token, "8a4b...", ["s3cret"])
    True
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from urllib.parse import quote


def webhook_token(secret: str, model_id: str) -> str:
    """The model's token under `secret`: the hex HMAC-SHA256 of its id."""
    return hmac.new(secret.encode(), model_id.encode(), hashlib.sha256).hexdigest()


def verify_token(token: str | None, model_id: str, secrets: Iterable[str]) -> bool:
    """True when `token` is the model's token under any of `secrets` (current first)."""
    if not token:
        return False
    presented = token.encode()
    matched = False
    for secret in secrets:
        # No early exit: the answer's timing says nothing about which secret matched.
        matched |= hmac.compare_digest(presented, webhook_token(secret, model_id).encode())
    return matched


def webhook_url(base_url: str, model_id: str, secret: str) -> str:
    """The URL to register on Numerai for a model: `{base}/pred/{id}/{token}`.

    >>> webhook_url("https://x.run.app/", "m-1", "s3cret").startswith("https://x.run.app/pred/m-1/")
    True
    """
    token = webhook_token(secret, model_id)
    return f"{base_url.rstrip('/')}/pred/{quote(model_id, safe='')}/{token}"
