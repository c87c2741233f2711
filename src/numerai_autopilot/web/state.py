"""What the routes read from the app: the `Runtime` its lifespan opened.

    service = runtime(request)     # in a route or a dependency; ServerStarting before it opened

`web.app.create_app` answers `ServerStarting` with 503 `{"error": ...}` on every route, so a
caller (Numerai, a browser, a probe) is told to try again rather than given a 500.
"""

from __future__ import annotations

from fastapi import Request

from numerai_autopilot.errors import AutopilotError
from numerai_autopilot.runtime import Runtime


class ServerStarting(AutopilotError):
    """The app has no runtime yet: the request came before the lifespan opened one."""


def runtime(request: Request) -> Runtime:
    """The app's runtime (its lifespan puts it on `app.state`).

    :raises ServerStarting: the app has none yet.
    """
    found: Runtime | None = getattr(request.app.state, "runtime", None)
    if found is None:
        raise ServerStarting("the server is starting; send the request again in a few seconds")
    return found
