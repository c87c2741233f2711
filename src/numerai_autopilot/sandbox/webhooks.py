"""Webhook POSTs as Numerai sends them: fire and forget, each delivery recorded.

Deliveries run as tasks on the server's event loop, so opening a round never waits for the
receivers' answers. Secrets in webhook URLs (the ``token`` query parameter, or anything named
like a key or secret) are replaced by ``***`` in every record and error message.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

_SECRET_PARAMS = ("token", "secret", "key", "password", "signature", "sig")


def redact_url(url: str) -> str:
    """``https://h/pred/1?token=abc&x=1`` -> ``https://h/pred/1?token=***&x=1``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if not parts.query and not parts.password:
        return url
    query = [
        (k, "***" if any(s in k.lower() for s in _SECRET_PARAMS) else v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    netloc = parts.netloc
    if parts.password:
        netloc = netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, safe="*"),
                       parts.fragment))


def _secrets_in(url: str) -> list[str]:
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found = [v for k, v in parse_qsl(parts.query) if any(s in k.lower() for s in _SECRET_PARAMS)]
    if parts.password:
        found.append(parts.password)
    return [s for s in found if s]


def redact_text(text: str, url: str) -> str:
    """Remove the URL's secrets from an error message that may quote the URL."""
    for secret in _secrets_in(url):
        text = text.replace(secret, "***")
    return text


@dataclass
class WebhookDelivery:
    """One webhook POST: who, where (redacted), what, and how it went."""

    id: int
    model_id: str
    model_name: str
    url: str
    payload: dict[str, Any]
    kind: str  # "round_open" or "test"
    started_at: datetime
    finished_at: datetime | None = None
    status_code: int | None = None
    error: str | None = None
    duration_s: float | None = None

    @property
    def done(self) -> bool:
        return self.finished_at is not None


@dataclass
class WebhookDispatcher:
    """Posts webhooks in the background and keeps the record of every delivery."""

    timeout_s: float = 10.0
    deliveries: list[WebhookDelivery] = field(default_factory=list)
    _client: httpx.AsyncClient | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _changed: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self._changed = threading.Condition(self._lock)

    def fire(self, *, model_id: str, model_name: str, url: str, payload: dict[str, Any],
             kind: str) -> WebhookDelivery:
        """Schedule one POST on the running event loop; returns its (pending) record."""
        with self._lock:
            delivery = WebhookDelivery(
                id=len(self.deliveries) + 1, model_id=model_id, model_name=model_name,
                url=redact_url(url), payload=payload, kind=kind, started_at=datetime.now(UTC),
            )
            self.deliveries.append(delivery)
        task = asyncio.get_running_loop().create_task(self._post(delivery, url))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return delivery

    async def _post(self, delivery: WebhookDelivery, url: str) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=False)
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        try:
            response = await self._client.post(url, json=delivery.payload)
            status = response.status_code
        except asyncio.CancelledError:
            error = "cancelled: the sandbox shut down before the receiver answered"
            raise
        except httpx.HTTPError as exc:
            error = redact_text(f"{type(exc).__name__}: {exc}", url)
        finally:
            with self._changed:
                delivery.status_code = status
                delivery.error = error
                delivery.duration_s = time.perf_counter() - started
                delivery.finished_at = datetime.now(UTC)
                self._changed.notify_all()

    def snapshot(self) -> list[WebhookDelivery]:
        with self._lock:
            return list(self.deliveries)

    def wait(self, count: int, timeout: float) -> list[WebhookDelivery]:
        """Block (from another thread) until ``count`` deliveries have finished."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while sum(d.done for d in self.deliveries) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    done = sum(d.done for d in self.deliveries)
                    raise TimeoutError(
                        f"{done} of {count} webhook deliveries finished within {timeout} s"
                    )
                self._changed.wait(left)
            return list(self.deliveries)

    async def aclose(self) -> None:
        """Cancel deliveries still in flight and close the HTTP client."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None
