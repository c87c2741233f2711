"""Fault injection, set at runtime through ``POST /_sandbox/faults``.

The JSON body (every key optional; a POST replaces the whole configuration, DELETE clears)::

    {
      "seed": 0,                              # seeds the random draws: same requests, same faults
      "operations": {                         # per operation: a GraphQL field name such as
        "create_submission": {                # "rounds" or "create_submission", "put" (upload
          "error_rate": 0.5,                  # PUTs), "download" (dataset GETs), or "*" (all)
          "error_status": 503,                # the 5xx status answered
          "drop_rate": 0.0,                   # close the connection without any answer
          "latency_ms": 200,                  # added before the operation runs
          "answer_delay_ms": 0,               # added after it ran, before its answer is sent
          "times": 2                          # stop injecting errors/drops after this many
        }
      },
      "put_failure_rate": 0.0,                # PUTs answered 500 and not stored (still recorded)
      "bandwidth_bytes_per_s": null,          # throttle dataset downloads
      "cut_download_after_bytes": null,       # every download stops after N bytes (drop)
      "down_for_s": 0                         # every Numerai call answers 503 for N seconds
    }

A specific operation's rule wins over ``"*"``. The control API is never faulted. Faults are
drawn from a ``random.Random(seed)`` in request order, so sequential tests are deterministic.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import graphql
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import AutopilotError


class ConnectionDropped(AutopilotError):
    """Raised to drop a connection when no real socket is at hand (in-process ASGI)."""


class OperationFaults(BaseModel):
    model_config = ConfigDict(extra="forbid")

    error_rate: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    error_status: Annotated[int, Field(ge=500, le=599)] = 503
    drop_rate: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    latency_ms: Annotated[float, Field(ge=0.0)] = 0.0
    # The operation takes effect, then its answer is held back: a client that dies meanwhile
    # never learns the outcome (e.g. a submission created whose id was never received).
    answer_delay_ms: Annotated[float, Field(ge=0.0)] = 0.0
    times: Annotated[int | None, Field(ge=0)] = None


class FaultConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    operations: dict[str, OperationFaults] = Field(default_factory=dict)
    put_failure_rate: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    bandwidth_bytes_per_s: Annotated[int | None, Field(gt=0)] = None
    cut_download_after_bytes: Annotated[int | None, Field(ge=0)] = None
    down_for_s: Annotated[float, Field(ge=0.0)] = 0.0


@dataclass(frozen=True)
class Decision:
    latency_s: float = 0.0
    action: str | None = None  # "error", "drop" or "down"
    status: int = 503
    operation: str | None = None
    answer_delay_s: float = 0.0


class FaultState:
    """The current fault configuration, its random stream and the faults it injected."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.config = FaultConfig()
        self._rng = random.Random(0)
        self._down_until = 0.0
        self._used: dict[str, int] = {}
        self.injected: list[dict[str, Any]] = []

    def set(self, config: FaultConfig) -> None:
        with self._lock:
            self.config = config
            self._rng = random.Random(config.seed)
            self._down_until = time.monotonic() + config.down_for_s if config.down_for_s else 0.0
            self._used = {}

    def clear(self) -> None:
        self.set(FaultConfig())

    def view(self) -> dict[str, Any]:
        with self._lock:
            left = max(0.0, self._down_until - time.monotonic())
            return {"config": self.config.model_dump(), "down_for_s_left": round(left, 3),
                    "injected": list(self.injected)}

    def _record(self, operation: str, kind: str) -> None:
        self.injected.append({"operation": operation, "kind": kind,
                              "at": datetime.now(UTC).isoformat()})

    def decide(self, operations: list[str]) -> Decision:
        """What to do with a request touching these operations (in order of preference)."""
        with self._lock:
            if self._down_until and time.monotonic() < self._down_until:
                self._record(operations[0] if operations else "?", "down")
                return Decision(action="down", status=503)
            rules = self.config.operations
            name = next((op for op in operations if op in rules), "*")
            rule = rules.get(name)
            if rule is None:
                return Decision()
            label = operations[0] if name == "*" and operations else name
            latency = rule.latency_ms / 1000.0
            delay = rule.answer_delay_ms / 1000.0
            if rule.times is not None and self._used.get(name, 0) >= rule.times:
                return Decision(latency_s=latency, answer_delay_s=delay)
            action = None
            if rule.drop_rate and self._rng.random() < rule.drop_rate:
                action = "drop"
            elif rule.error_rate and self._rng.random() < rule.error_rate:
                action = "error"
            if action is not None:
                self._used[name] = self._used.get(name, 0) + 1
                self._record(label, action)
            return Decision(latency, action, rule.error_status, label, delay)

    def put_fails(self) -> bool:
        with self._lock:
            rate = self.config.put_failure_rate
            failed = bool(rate) and self._rng.random() < rate
            if failed:
                self._record("put", "put_failure")
            return failed

    def download_limits(self) -> tuple[int | None, int | None]:
        """(bytes per second, cut after bytes) for the next download."""
        with self._lock:
            return self.config.bandwidth_bytes_per_s, self.config.cut_download_after_bytes

    def note_cut(self) -> None:
        with self._lock:
            self._record("download", "cut")


def graphql_operations(body: bytes) -> list[str]:
    """Top-level field names a GraphQL request asks for, e.g. ``["rounds"]``."""
    try:
        payload = json.loads(body)
        document = graphql.parse(payload["query"])
    except (ValueError, KeyError, TypeError, graphql.GraphQLError):
        return []
    wanted = payload.get("operationName")
    names: list[str] = []
    for definition in document.definitions:
        if not isinstance(definition, graphql.OperationDefinitionNode):
            continue
        if wanted and (definition.name is None or definition.name.value != wanted):
            continue
        for selection in definition.selection_set.selections:
            if isinstance(selection, graphql.FieldNode):
                names.append(selection.name.value)
    return names


TRANSPORT_KEY = "sandbox.transport"


async def drop_connection(scope: Scope, *, flush: bool = False) -> None:
    """Close the client's connection without (finishing) an answer.

    Under uvicorn the socket is closed (``flush`` sends what was already written first), so
    the client sees "server disconnected" / a short body. Without a socket (in-process ASGI)
    :class:`ConnectionDropped` is raised instead.
    """
    transport = scope.get(TRANSPORT_KEY)
    if transport is None:
        raise ConnectionDropped("the sandbox dropped the connection (fault injection)")
    if flush:
        transport.close()
    else:
        transport.abort()
    # Let uvicorn see the disconnect before the app returns, or it logs an unfinished answer.
    cycle = getattr(transport.get_protocol(), "cycle", None)
    for _ in range(200):
        await asyncio.sleep(0 if _ < 3 else 0.005)
        if cycle is None or getattr(cycle, "disconnected", True):
            break


_HTML_5XX = "<html><head><title>{0}</title></head><body><center><h1>{0}</h1></center></body></html>"
_XML_5XX = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{0}</Code>"
            "<Message>{1}</Message></Error>")
_REASONS = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
            504: "Gateway Timeout"}


async def send_5xx(send: Send, status: int, *, xml: bool) -> None:
    reason = _REASONS.get(status, "Server Error")
    if xml:
        code = "ServiceUnavailable" if status == 503 else "InternalError"
        body, ctype = _XML_5XX.format(code, reason).encode(), b"application/xml"
    else:
        body, ctype = _HTML_5XX.format(f"{status} {reason}").encode(), b"text/html"
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", ctype),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class FaultMiddleware:
    """ASGI middleware: injects faults into Numerai-facing requests (not /_sandbox/)."""

    def __init__(self, app: ASGIApp, faults: FaultState) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        if path.startswith("/_sandbox"):
            await self.app(scope, receive, send)
            return
        xml = True
        if method == "POST" and path == "/":
            body = await _read_body(receive)
            operations, receive, xml = graphql_operations(body), _replay(body, receive), False
        elif path.startswith("/files/"):
            operations = ["download"]
        elif method == "PUT" and path.startswith("/uploads/"):
            operations = ["put"]
        else:
            operations = []
        decision = self.faults.decide(operations)
        if decision.latency_s:
            await asyncio.sleep(decision.latency_s)
        if decision.action == "drop":
            await drop_connection(scope)
            return
        if decision.action in ("error", "down"):
            await send_5xx(send, decision.status, xml=xml)
            return
        if decision.answer_delay_s:
            send = _delayed(send, decision.answer_delay_s)
        await self.app(scope, receive, send)


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _delayed(send: Send, delay_s: float) -> Send:
    """Hold the answer's first message back for ``delay_s`` (the app has already acted)."""

    async def delayed_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            await asyncio.sleep(delay_s)
        await send(message)

    return delayed_send


def _replay(body: bytes, original: Receive) -> Receive:
    """Hand the already-read body to the app, then pass on the real disconnect."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await original()

    return receive
