"""`POST /internal/keepalive`: the request the server holds open to itself while runs are
unfinished, so Cloud Run's request-based CPU counts the work after a webhook's answer
(`runs/keepbusy.py` sends it and says why).

Authenticated with the `X-Autopilot-Keep-Busy` header, `keep_busy_token(server.secret)`,
compared in constant time; anything else answers 401 and holds nothing. Answers
`{"unfinished": N}` once this process has no unfinished run it may work on (N = 0), after
`wait` seconds (at most `MAX_WAIT_S`), or at once when the server is stopping.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel

from numerai_autopilot.config import AppConfig
from numerai_autopilot.runs.keepbusy import HOLD_S, PATH, TOKEN_HEADER, keep_busy_token
from numerai_autopilot.web.state import runtime

# Below Cloud Run's longest request timeout (3600 s): a longer hold would be cut anyway.
MAX_WAIT_S = 3000.0

router = APIRouter()


class KeepAliveAnswer(BaseModel):
    """Unfinished runs this process may work on when the hold ended (0: none left)."""

    unfinished: int


@router.post(PATH, include_in_schema=False)
async def keepalive(
    request: Request, wait: float = Query(HOLD_S, ge=0, le=MAX_WAIT_S),
) -> KeepAliveAnswer:
    """Hold the request while this process has unfinished runs; see the module docstring."""
    config: AppConfig = request.app.state.config
    presented = request.headers.get(TOKEN_HEADER, "")
    secret = config.server.secret
    expected = keep_busy_token(secret.get_secret_value()) if secret is not None else ""
    if not expected or not hmac.compare_digest(presented.encode(), expected.encode()):
        raise HTTPException(status_code=401, detail=f"{TOKEN_HEADER}: missing or wrong")
    left = await runtime(request).keep_busy.hold(wait)
    return KeepAliveAnswer(unfinished=left)
