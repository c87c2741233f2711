"""Webhook POSTs as Numerai sends them: fire and forget, each delivery recorded.

Deliveries run as tasks on the server's event loop, so opening a round never waits for the
receivers' answers. Secrets in webhook URLs (the ``token`` query parameter, anything named
like a key or secret, and a path segment that looks like a token) are replaced by ``***`` in
every record and error message.

No document fixes the body's shape, so the body of each delivery is chosen by a `BodyShape`:
the sandbox's default (``SandboxSettings.webhook_body``) or the model's own, set through the
control API (``POST /_sandbox/webhooks/body``). ``standard`` is what the seed document saw::

    round open: {"roundNumber": 1101, "dataVersion": 1, "triggerId": "<uuid>"}
    test:       {"roundNumber": "test", "dataVersion": 1, "triggerId": "<uuid>", "isTest": true}
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

_SECRET_PARAMS = ("token", "secret", "key", "password", "signature", "sig")
# A path segment this long made of token characters is taken for a secret; a UUID (a model
# id) is not one.
_TOKEN_SEGMENT = re.compile(r"[A-Za-z0-9_\-]{32,}")
_UUID = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")


class BodyShape(str, Enum):
    """The shape of a webhook body, each one a reference or a guess at what Numerai may send
    (docs: numerai-protocol.md, "The webhook Numerai sends").

    standard        the seed document's bodies (see the module docstring)
    string_round    ``"roundNumber": "1101"`` (the Cloud Run template types it ``int | str``)
    float_round     ``"roundNumber": 1101.0``
    null_is_test    ``"isTest": null`` added (the template types it ``bool | None``)
    string_is_test  ``"isTest": "false"`` (``"true"`` for a test)
    null_fields     ``"roundNumber": null``, ``"dataVersion": null``, ``"isTest": null``
    no_trigger      no ``triggerId``
    trigger_only    ``{"triggerId": ...}`` alone: all numerai-cli's handlers read
    cli_mock        ``{"roundNumber": -1, "dataVersion": 1}``: numerai-cli 0.2's own mock
    extra_fields    unknown fields added, ``"dataVersion": "v5.3"``
    """

    STANDARD = "standard"
    STRING_ROUND = "string_round"
    FLOAT_ROUND = "float_round"
    NULL_IS_TEST = "null_is_test"
    STRING_IS_TEST = "string_is_test"
    NULL_FIELDS = "null_fields"
    NO_TRIGGER = "no_trigger"
    TRIGGER_ONLY = "trigger_only"
    CLI_MOCK = "cli_mock"
    EXTRA_FIELDS = "extra_fields"


def body_shape(name: str) -> BodyShape:
    """The shape named `name`; ValueError listing the shapes for another name."""
    try:
        return BodyShape(name)
    except ValueError:
        known = ", ".join(shape.value for shape in BodyShape)
        raise ValueError(f"webhook body {name!r} is not one of: {known}") from None


def shaped(standard: dict[str, Any], shape: BodyShape) -> dict[str, Any]:
    """`standard` (a round-open or test body as the module docstring shows) in `shape`."""
    test = standard.get("isTest") is True
    rnd = standard["roundNumber"]
    if shape is BodyShape.STRING_ROUND:
        return {**standard, "roundNumber": str(rnd)}
    if shape is BodyShape.FLOAT_ROUND:
        return {**standard, "roundNumber": rnd if test else float(rnd)}
    if shape is BodyShape.NULL_IS_TEST:
        return {**standard, "isTest": None}
    if shape is BodyShape.STRING_IS_TEST:
        return {**standard, "isTest": "true" if test else "false"}
    if shape is BodyShape.NULL_FIELDS:
        return {**standard, "roundNumber": rnd if test else None, "dataVersion": None,
                "isTest": None}
    if shape is BodyShape.NO_TRIGGER:
        return {k: v for k, v in standard.items() if k != "triggerId"}
    if shape is BodyShape.TRIGGER_ONLY:
        return {"triggerId": standard["triggerId"]}
    if shape is BodyShape.CLI_MOCK:
        return {"roundNumber": -1, "dataVersion": 1}
    if shape is BodyShape.EXTRA_FIELDS:
        return {**standard, "dataVersion": "v5.3", "tournament": 8, "model": {"stake": None},
                "sentAt": datetime.now(UTC).isoformat()}
    return dict(standard)


def redact_url(url: str) -> str:
    """``https://h/pred/1?token=abc&x=1`` -> ``https://h/pred/1?token=***&x=1``; a path
    segment that looks like a token (32 or more letters, digits, ``-``, ``_``; not a UUID)
    becomes ``***`` too."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    path = "/".join("***" if _is_token(seg) else seg for seg in parts.path.split("/"))
    if not parts.query and not parts.password and path == parts.path:
        return url
    query = [
        (k, "***" if any(s in k.lower() for s in _SECRET_PARAMS) else v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    netloc = parts.netloc
    if parts.password:
        netloc = netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit((parts.scheme, netloc, path, urlencode(query, safe="*"), parts.fragment))


def _is_token(segment: str) -> bool:
    return bool(_TOKEN_SEGMENT.fullmatch(segment)) and not _UUID.fullmatch(segment)


def _secrets_in(url: str) -> list[str]:
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found = [v for k, v in parse_qsl(parts.query) if any(s in k.lower() for s in _SECRET_PARAMS)]
    found += [seg for seg in parts.path.split("/") if _is_token(seg)]
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
    """One webhook POST: who, where (redacted), what (the body sent, its shape, and the
    trigger id Numerai issued, sent or not), and how it went."""

    id: int
    model_id: str
    model_name: str
    url: str
    payload: dict[str, Any]
    kind: str  # "round_open" or "test"
    started_at: datetime
    shape: str = BodyShape.STANDARD.value
    trigger_id: str | None = None
    finished_at: datetime | None = None
    status_code: int | None = None
    error: str | None = None
    duration_s: float | None = None

    @property
    def done(self) -> bool:
        return self.finished_at is not None


@dataclass
class WebhookDispatcher:
    """Posts webhooks in the background and keeps the record of every delivery.

    `shape` is the body's shape for every model without one of its own in `shapes` (by
    model id); `set_shape` changes either.
    """

    timeout_s: float = 10.0
    shape: BodyShape = BodyShape.STANDARD
    shapes: dict[str, BodyShape] = field(default_factory=dict)
    deliveries: list[WebhookDelivery] = field(default_factory=list)
    _client: httpx.AsyncClient | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _changed: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self._changed = threading.Condition(self._lock)

    def set_shape(self, shape: BodyShape, model_id: str | None = None) -> None:
        """Send bodies in `shape` to the model `model_id`, or to every model without a shape
        of its own when None."""
        with self._lock:
            if model_id is None:
                self.shape = shape
            else:
                self.shapes[model_id] = shape

    def shapes_view(self) -> dict[str, Any]:
        """``{"default": shape, "models": {model_id: shape}}``."""
        with self._lock:
            return {"default": self.shape.value,
                    "models": {m: shape.value for m, shape in self.shapes.items()}}

    def fire(self, *, model_id: str, model_name: str, url: str, payload: dict[str, Any],
             kind: str) -> WebhookDelivery:
        """Schedule one POST on the running event loop; returns its (pending) record.
        `payload` is the standard body; the model's shape decides what is sent."""
        with self._lock:
            shape = self.shapes.get(model_id, self.shape)
            delivery = WebhookDelivery(
                id=len(self.deliveries) + 1, model_id=model_id, model_name=model_name,
                url=redact_url(url), payload=shaped(payload, shape), kind=kind,
                started_at=datetime.now(UTC), shape=shape.value,
                trigger_id=payload.get("triggerId"),
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
