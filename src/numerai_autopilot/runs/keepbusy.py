"""Keep the server busy, the way Cloud Run counts it, while runs are unfinished.

With request-based billing, Cloud Run allocates CPU only while a request is in flight and
may stop an instance that has none (https://cloud.google.com/run/docs/configuring/billing-settings);
the work after the webhook's 200 is no request. So while the ledger holds unfinished runs
this process may work on, `KeepBusy` holds a request to the server's own front door open:
`POST {url}/internal/keepalive` (`web/keepalive.py`), carrying `keep_busy_token(secret)` in
the `X-Autopilot-Keep-Busy` header. The server answers it (`KeepBusy.hold`) once no such run
is left, or after `hold_s`, and another request goes out while work remains. Under Cloud Run
`url` is the service's public URL (the request must come in through Cloud Run's front end to
count); elsewhere the server's own address.

    keep_busy = KeepBusy(ledger, owner, http, url="https://autopilot-x.run.app",
                         token=keep_busy_token(secret))
    keep_busy.poke()            # a run was recorded or claimed: keep busy while work remains
    left = await keep_busy.hold(300)    # the endpoint's side: wait until no run is left
    keep_busy.stop(); await keep_busy.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
from collections.abc import Mapping

import httpx

from numerai_autopilot.config import ServerSettings
from numerai_autopilot.errors import ConfigError
from numerai_autopilot.ledger import Ledger, utcnow

log = logging.getLogger(__name__)

TOKEN_HEADER = "X-Autopilot-Keep-Busy"
PATH = "/internal/keepalive"
# One held request lasts at most this long: well under the Cloud Run request timeout the
# deploy sets (3600 s), after which the platform would cut it.
HOLD_S = 300.0
# A held request looks at the ledger this often (runs may end in another process too).
_CHECK_S = 1.0
# After a request that failed or was answered at once, wait this long before the next.
_PAUSE_S = 1.0
# The client waits this much longer than the hold for the answer.
_ANSWER_MARGIN_S = 30.0
# Failed requests in a row before a warning is logged.
_FAILURES_TO_WARN = 3
_LOOPBACK_FOR = {"", "0.0.0.0", "::", "[::]"}


def keep_busy_token(secret: str) -> str:
    """The keep-busy endpoint's token: the hex HMAC-SHA256 of a fixed label under the
    server's secret (never a model's webhook token: those are HMACs of model ids)."""
    return hmac.new(secret.encode(), b"numerai-autopilot:keep-busy", hashlib.sha256).hexdigest()


def keep_busy_url(settings: ServerSettings, env: Mapping[str, str], *, host: str, port: int,
                  source: str = "autopilot.toml") -> str | None:
    """Where to send the keep-busy requests, or None when keeping busy is off.

    `settings.keep_busy`: "off"; "on"; "auto" (the default) is on under Cloud Run (`K_SERVICE`
    in `env`, which Cloud Run sets) when `settings.public_url` is known. Under Cloud Run the
    requests go to `public_url` (through the front end, where they count); elsewhere to the
    server itself at `host:port` (127.0.0.1 for a wildcard `host`).

    :raises ConfigError: "on" under Cloud Run without `public_url`.

    >>> keep_busy_url(ServerSettings(keep_busy="on"), {}, host="0.0.0.0", port=8080)
    'http://127.0.0.1:8080/internal/keepalive'
    >>> keep_busy_url(ServerSettings(), {}, host="0.0.0.0", port=8080) is None
    True
    """
    on_cloud_run = bool(env.get("K_SERVICE"))
    public_url = settings.public_url.rstrip("/") if settings.public_url else None
    if settings.keep_busy == "off":
        return None
    if settings.keep_busy == "auto" and not (on_cloud_run and public_url):
        if on_cloud_run:
            log.warning(
                "keep-busy is off: server.public_url is not set, so runs after a webhook's "
                "answer get no CPU under request-based billing; set AUTOPILOT_SERVER_PUBLIC_URL "
                "to the service's URL")
        return None
    if on_cloud_run:
        if public_url is None:
            raise ConfigError(
                f"{source}: server.keep_busy: 'on' under Cloud Run needs server.public_url "
                "(the service's https://...run.app URL; or AUTOPILOT_SERVER_PUBLIC_URL): the "
                "requests must come in through Cloud Run's front end to count")
        return public_url + PATH
    address = "127.0.0.1" if host in _LOOPBACK_FOR else host
    if ":" in address and not address.startswith("["):
        address = f"[{address}]"
    return f"http://{address}:{port}{PATH}"


class KeepBusy:
    """Holds a request to this server open while the ledger has unfinished runs this
    process may work on: queued or released ones, its own, and those whose lease ran out
    (not those another live instance holds). See the module docstring.

    :param http: sends the requests (its timeouts are set per request).
    :param url: the keep-busy endpoint's URL (`keep_busy_url`); None sends nothing (the
        endpoint's side, `hold`, works all the same).
    :param token: the endpoint's token (`keep_busy_token`); required with `url`.
    :param hold_s: how long one request is held at most.
    """

    def __init__(self, ledger: Ledger, owner: str, http: httpx.AsyncClient, *,
                 url: str | None, token: str | None, hold_s: float = HOLD_S) -> None:
        if url is not None and not token:
            raise ValueError("KeepBusy: a url needs the endpoint's token")
        self._ledger = ledger
        self._owner = owner
        self._http = http
        self._url = url
        self._token = token or ""
        self._hold_s = hold_s
        self._stopped = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._poked = False
        self._failures = 0  # requests failed in a row
        self.holding = 0
        """Keep-busy requests this server is holding now (the endpoint's side)."""

    @property
    def url(self) -> str | None:
        """Where the requests go; None when this process sends none."""
        return self._url

    def poke(self, *, check: bool = False) -> None:
        """There may be work (a run was just recorded or claimed): keep busy while there is.

        Returns at once (the caller, e.g. the webhook, never waits for the request); a no-op
        when off, stopped, or already keeping busy. The first request goes out at once (the
        endpoint answers at once if no run is left), unless `check`: the ledger is read
        first (at start, when there may be nothing to do).
        """
        if self._url is None or self._stopped.is_set():
            return
        self._poked = True
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._keep(check=check), name="keep-busy")

    def stop(self) -> None:
        """Send no more requests, and answer the held ones now (at SIGTERM: the HTTP server
        waits for open requests before it shuts the app down). Synchronous, idempotent."""
        self._stopped.set()

    async def close(self) -> None:
        """`stop`, and wait for the request in flight to end."""
        self.stop()
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def hold(self, max_s: float) -> int:
        """The endpoint's side: return once this process has no unfinished run it may work
        on, after `max_s` seconds, or at `stop`; the number of such runs left then.

        A ledger that cannot be read counts as work left (the request is held on).
        """
        self.holding += 1
        loop = asyncio.get_running_loop()
        until = loop.time() + max(max_s, 0.0)
        try:
            while True:
                left = await self._work_left(default=1)
                remaining = until - loop.time()
                if left == 0 or remaining <= 0 or self._stopped.is_set():
                    return left
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopped.wait(), min(_CHECK_S, remaining))
        finally:
            self.holding -= 1

    async def _keep(self, *, check: bool) -> None:
        """Requests one after another while work is left (the first without reading the
        ledger unless `check`)."""
        loop = asyncio.get_running_loop()
        while not self._stopped.is_set():
            if check:
                self._poked = False
                if not await self._work_left(default=1) and not self._poked:
                    return
            check = True
            sent = loop.time()
            await self._request()
            if loop.time() - sent < _PAUSE_S:  # failed, or answered at once: no busy loop
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopped.wait(), _PAUSE_S)

    async def _request(self) -> None:
        """One held request; a failure is logged (`_failed`), not raised."""
        assert self._url is not None
        try:
            answer = await self._http.post(
                self._url, params={"wait": f"{self._hold_s:g}"},
                headers={TOKEN_HEADER: self._token},
                timeout=httpx.Timeout(self._hold_s + _ANSWER_MARGIN_S, connect=10.0),
            )
        except httpx.HTTPError as exc:
            self._failed(f"{type(exc).__name__}: {exc}")
            return
        if answer.status_code != 200:
            self._failed(f"answered {answer.status_code}")
        elif self._failures:
            if self._failures >= _FAILURES_TO_WARN:
                log.info("keep-busy: %s answers again", self._url)
            self._failures = 0

    def _failed(self, why: str) -> None:
        """Log a failed request: quietly at first (a server still binding its port refuses
        the first ones), a warning once it keeps failing."""
        self._failures += 1
        level = logging.WARNING if self._failures == _FAILURES_TO_WARN else logging.DEBUG
        log.log(level, "keep-busy: the request to %s failed (%s); trying again while runs are "
                "unfinished (check server.public_url, and that the service takes "
                "unauthenticated requests)", self._url, why)

    async def _work_left(self, *, default: int) -> int:
        """Unfinished runs this process may work on; `default` when the ledger cannot say."""
        try:
            return await asyncio.to_thread(self._count_work)
        except Exception as exc:  # noqa: BLE001  (an unreadable ledger: assume work is left)
            log.warning("keep-busy: reading the ledger failed (%s); assuming runs are left", exc)
            return default

    def _count_work(self) -> int:
        now = utcnow()
        return sum(1 for run in self._ledger.unfinished()
                   if run.owner in (None, self._owner)
                   or run.lease_until is None or run.lease_until <= now)
