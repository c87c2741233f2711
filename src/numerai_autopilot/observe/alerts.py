"""Alerts through apprise URLs (Slack, Discord, Telegram, e-mail, json://, ...).

Best-effort by design: an alert never fails or delays a run. Sending happens in a background
task and in a thread (apprise blocks); every error is caught and logged, then forgotten.
Alerts are rate-limited (at most `rate_limit` per `rate_window`; the rest are dropped and
counted in the next one sent), each alert key is sent at most once (per process; with
`claim`, the ledger's `claim_alert`, across restarts and every instance sharing the
ledger), and every text is redacted before it leaves: known secrets, URL query strings,
`token=`/`key=` values and long key-like strings become `***`.

    alerter = Alerter(["json://hooks.example/alerts"], secrets=["my-api-key"])
    alerter.post("failed:run-1", "alpha failed", "round 512, predicting: model file is corrupt")
    await alerter.drain()   # on shutdown: wait (briefly) for alerts in flight
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Sequence

log = logging.getLogger(__name__)

REDACTED = "***"
_SEND_TIMEOUT_S = 30.0
_MIN_SECRET_LEN = 6
_UUID = re.compile(r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$")
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # a URL's query string (webhook tokens, presigned signatures)
    (re.compile(r"(\w+://[^\s?#\"'<>]+)\?[^\s\"'<>]*"), rf"\1?{REDACTED}"),
    # Authorization headers: `Token PUBLIC$SECRET`, `Bearer xyz`
    (re.compile(r"(?i)\b(bearer)\s+[^\s,;]+"), rf"\1 {REDACTED}"),
    (re.compile(r"(?i)\b(token)\s+[^\s$]+\$[^\s,;]*"), rf"\1 {REDACTED}"),
    # key=value pairs whose name says secret
    (re.compile(r"(?i)\b([\w-]*(?:token|secret|key|password|signature|auth)[\w-]*)(\s*[=:]\s*)"
                r"(?!\*\*\*)[^\s,;&\"']+"), rf"\1\2{REDACTED}"),
)
_LONG = re.compile(r"(?<![\w-])[A-Za-z0-9_\-+/=]{32,}(?![\w-])")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` without secrets: the given values and anything that looks like a key or token.

    >>> redact("GET https://x.io/pred/m1?token=abc failed; key=hunter2", ["hunter2"])
    'GET https://x.io/pred/m1?*** failed; key=***'
    """
    for secret in sorted((s for s in secrets if len(s) >= _MIN_SECRET_LEN), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return _LONG.sub(lambda m: m.group(0) if _keep(m.group(0)) else REDACTED, text)


def _keep(word: str) -> bool:
    """Ids people need to read (UUIDs: run, trigger and submission ids), plain words, and
    paths of those (a run page's link: `example.org/runs/<uuid>`)."""
    if "/" in word:
        return all(_keep(part) for part in word.split("/"))
    has_digit = any(c.isdigit() for c in word)
    has_alpha = any(c.isalpha() for c in word)
    return bool(_UUID.match(word)) or not (has_digit and has_alpha)


class Alerter:
    """Sends alerts to apprise URLs; see the module docstring. Never raises from `post`."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        secrets: Iterable[str] = (),
        rate_limit: int = 10,
        rate_window_s: float = 3600.0,
        claim: Callable[[str], bool] | None = None,
    ) -> None:
        """`claim(key)` (blocking; run in a thread) says whether the alert is still to be
        sent: False when another process (or this one before a restart) sent it. When it
        fails, the alert goes out anyway: twice is better than never."""
        self._urls = list(urls)
        self._claim = claim
        self._secrets = [s for s in secrets if s]
        self._rate_limit = rate_limit
        self._rate_window_s = rate_window_s
        self._sent_at: deque[float] = deque()  # when the alerts of the window went out
        self._seen: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.sent = 0
        self.dropped = 0  # rate-limited since the last alert that went out
        self.failed = 0
        self.already_sent = 0  # refused by `claim`: sent by another process or before a restart
        if self._urls:
            _import_apprise()  # now, on the caller's thread: it is slow and warns on import

    @property
    def enabled(self) -> bool:
        return bool(self._urls)

    def redact(self, text: str) -> str:
        return redact(text, self._secrets)

    def post(self, key: str, title: str, body: str) -> bool:
        """Queue an alert unless `key` was already sent or the rate limit is reached; whether
        it was queued. The caller never waits for the sending, nor sees its errors."""
        if not self._urls or key in self._seen:
            return False
        self._seen.add(key)
        if not self._within_rate_limit():
            self.dropped += 1
            log.warning("alert %r dropped by the rate limit", key)
            return False
        if self.dropped:
            body += f"\n\n({self.dropped} earlier alert(s) dropped by the rate limit)"
            self.dropped = 0
        task = asyncio.get_running_loop().create_task(
            self._send(key, self.redact(title), self.redact(body)), name=f"alert-{key}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    def _within_rate_limit(self) -> bool:
        now = time.monotonic()
        while self._sent_at and now - self._sent_at[0] >= self._rate_window_s:
            self._sent_at.popleft()
        if len(self._sent_at) >= self._rate_limit:
            return False
        self._sent_at.append(now)
        return True

    async def _send(self, key: str, title: str, body: str) -> None:
        if not await self._still_to_send(key):
            self.already_sent += 1
            log.info("alert %r was already sent (before a restart, or by another instance)", key)
            return
        try:
            ok = await asyncio.wait_for(
                asyncio.to_thread(_notify, self._urls, title, body), _SEND_TIMEOUT_S
            )
        except Exception as exc:  # noqa: BLE001 - best effort: log and move on
            ok = False
            log.warning("sending an alert failed: %s", self.redact(f"{type(exc).__name__}: {exc}"))
        if ok:
            self.sent += 1
        else:
            self.failed += 1
            log.warning("alert %r was not delivered to every URL", title)

    async def _still_to_send(self, key: str) -> bool:
        if self._claim is None:
            return True
        try:
            return await asyncio.wait_for(asyncio.to_thread(self._claim, key), _SEND_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - best effort: send rather than lose it
            log.warning("could not check whether alert %r was already sent (%s); sending it",
                        key, self.redact(f"{type(exc).__name__}: {exc}"))
            return True

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait up to `timeout` seconds for alerts in flight (on shutdown)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)


def _import_apprise() -> None:
    """Import apprise once, quietly: it is slow and some of its modules warn on import."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import apprise

        apprise.Apprise().add("json://localhost")  # loads every plugin module now


def _notify(urls: Sequence[str], title: str, body: str) -> bool:
    import apprise  # already imported by Alerter(); only loaded when alerts are configured

    notifier = apprise.Apprise()
    for url in urls:
        if not notifier.add(url):
            log.warning("alerts.urls: an URL is not understood by apprise; check its scheme")
    if not len(notifier):
        return False
    return bool(notifier.notify(body=body, title=title))
