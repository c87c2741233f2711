"""How the faults of ``faults.py`` reach the wire: the ASGI middleware, dropped connections,
S3-like 5xx pages, redirects and Numerai's HTTP-200 GraphQL errors."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import graphql
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import AutopilotError
from .faults import FaultState, OperationFaults


class ConnectionDropped(AutopilotError):
    """Raised to drop a connection when no real socket is at hand (in-process ASGI)."""


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


REDIRECT_PREFIX = "/_redirect/"


async def send_redirect(send: Send, scope: Scope, status: int, left: int, original: bytes
                        ) -> None:
    """Redirect to ``/_redirect/{status}/{left}`` + the original path, query unchanged.

    ``original`` is the path as the client sent it (percent-encoded), so the Location holds
    the request's bytes: a client that re-encodes them breaks a presigned URL's signature.
    """
    location = f"{REDIRECT_PREFIX}{status}/{left}".encode() + original
    if scope.get("query_string"):
        location += b"?" + scope["query_string"]
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"location", location), (b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


def _redirect_hop(scope: Scope) -> tuple[int, int, Scope] | None:
    """(status, redirects left, the original request's scope) of a ``/_redirect/`` path."""
    raw = scope.get("raw_path") or scope["path"].encode()
    try:
        status_text, left_text, _ = scope["path"][len(REDIRECT_PREFIX):].split("/", 2)
        status, left = int(status_text), int(left_text)
    except ValueError:
        return None
    skip = len(REDIRECT_PREFIX) + len(status_text) + len(left_text) + 1
    original = {**scope, "path": scope["path"][skip:], "raw_path": raw[skip:]}
    return status, left, original


def graphql_error_body(rule: OperationFaults, operations: list[str]) -> bytes:
    """Numerai's answer to an operation that failed on its side (sent with HTTP 200)."""
    error: dict[str, Any] = {"message": rule.graphql_error_message}
    if operations:
        error["path"] = [operations[0]]
    if rule.graphql_error_code:
        error["extensions"] = {"code": rule.graphql_error_code}
    data = {name: None for name in operations} or None
    return json.dumps({"data": data, "errors": [error]}).encode()


async def _send_json(send: Send, body: bytes) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _discard(message: Message) -> None:
    """A ``send`` that drops the app's answer: the fault answers instead."""


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
        if path.startswith(REDIRECT_PREFIX):
            await self._follow(scope, receive, send)
            return
        xml, graphql = True, False
        if method == "POST" and path == "/":
            body = await _read_body(receive)
            operations, receive = graphql_operations(body), _replay(body, receive)
            xml, graphql = False, True
        elif path.startswith("/files/"):
            operations = ["download"]
        elif method == "PUT" and path.startswith("/uploads/"):
            operations = ["put"]
        else:
            operations = []
        decision = self.faults.decide(operations, graphql=graphql)
        if decision.latency_s:
            await asyncio.sleep(decision.latency_s)
        if decision.action == "drop":
            await drop_connection(scope)
            return
        if decision.action in ("error", "down"):
            await send_5xx(send, decision.status, xml=xml)
            return
        rule = decision.rule
        if decision.action == "redirect" and rule is not None:
            original = scope.get("raw_path") or path.encode()
            await send_redirect(send, scope, rule.redirect_status, rule.redirects - 1, original)
            return
        if decision.action == "graphql_error" and rule is not None:
            if rule.graphql_error_after:
                await self.app(scope, receive, _discard)  # it happened; the answer is lost
            await _send_json(send, graphql_error_body(rule, operations))
            return
        if decision.answer_delay_s:
            send = _delayed(send, decision.answer_delay_s)
        await self.app(scope, receive, send)

    async def _follow(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A request that followed an injected redirect: redirect again, or serve it."""
        hop = _redirect_hop(scope)
        if hop is None:
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        status, left, original = hop
        if left > 0:
            await send_redirect(send, scope, status, left - 1, original["raw_path"])
            return
        await self.app(original, receive, send)


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
