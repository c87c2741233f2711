"""Plain webhooks answered at the HTTP protocol level, before uvicorn's ASGI machinery.

    uvicorn.run(create_app(config), http=WebhookProtocol, ...)   # what `autopilot serve` does

A round's open brings every model's webhook at once, each on a new connection. Through
uvicorn and ASGI a webhook cost ~150 µs of the one event loop (a parser with a callback per
header, the scope, a request cycle, a task, the ASGI messages); on a 2-core machine the last
of 200 was answered well after the client's own floor. `WebhookProtocol` reads a
connection's requests itself while they are plain webhooks: `POST /pred/<a configured
model id>?...` in HTTP/1.1 with a Content-Length body of at most 64 KiB, no Expect,
Transfer-Encoding or Upgrade, no NUL or percent sign in the path. It checks the token, parses
the payload, hands the run to the batch recorder and answers once the run is committed,
with the same answers, logs and metrics as `server.webhook.WebhookEndpoint`.

At the first request that is anything else (every other URL, a model id configured by name
only, a chunked body, an odd header line) the connection, with every byte not yet consumed,
goes to uvicorn's own HTTP protocol, which answers it through the app: the webhook endpoint
there covers what this path leaves out. A request is never half read by both.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, cast

from uvicorn.config import Config
from uvicorn.protocols.http.auto import AutoHTTPProtocol
from uvicorn.server import ServerState

from numerai_autopilot.config import ModelConfig
from numerai_autopilot.ledger import NewRun, Run
from numerai_autopilot.observe.logs import cloud_trace, current_trace
from numerai_autopilot.runtime import Runtime
from numerai_autopilot.web import webhook
from numerai_autopilot.web.payload import MAX_BODY_BYTES

_PREFIX = b"POST /pred/"
_MAX_HEAD = 16 * 1024  # larger heads go to uvicorn, which answers them
# The model id: what `quote(model_id, safe="")` leaves unescaped (no "%": escaped ids go to
# uvicorn, which unquotes them). The query: visible ASCII.
_REQUEST_LINE = re.compile(rb"POST /pred/([A-Za-z0-9_.~-]+)(?:\?([!-~]*))? HTTP/1\.1")
_HEADER = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([^\x00-\x08\x0a-\x1f\x7f]*?)[ \t]*")
_TCP_CORK: int | None = getattr(socket, "TCP_CORK", None)  # Linux's
_TCP_FAMILIES = (socket.AF_INET, socket.AF_INET6)
_STATUS = {s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode() for s in HTTPStatus}


@dataclass(frozen=True, slots=True)
class _Webhook:
    """One parsed webhook request, its body not yet read."""

    model: ModelConfig
    model_id: str
    query: bytes
    length: int
    close: bool
    trace: str | None


def _cork(transport: asyncio.Transport) -> None:
    """Hold what is written until the close, so that the answer and the end of the
    connection reach the client as one TCP segment: one delivery and one wake-up of the
    client instead of two. The kernel sends on close (or after 200 ms at most). Measured,
    200 answers written and closed in a row on loopback: 1.35 ms without, 0.8 ms with."""
    sock = transport.get_extra_info("socket")
    if _TCP_CORK is not None and sock is not None and sock.family in _TCP_FAMILIES:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, _TCP_CORK, 1)
        except OSError:  # pragma: no cover - a TCP socket takes it; without it, two segments
            pass


_head_cache: tuple[object, bytes] = (None, b"")  # uvicorn's default_headers list, its lines


def _common_head(default_headers: list[tuple[bytes, bytes]]) -> bytes:
    """Every answer's header lines up to the content length's value: uvicorn's (server,
    date) and ours. uvicorn puts a new list in place each second, for its date: the lines
    are made once per list, not once per answer."""
    global _head_cache
    source, lines = _head_cache
    if source is not default_headers:
        lines = b"".join(b"%s: %s\r\n" % (name, value) for name, value in default_headers)
        lines += b"content-type: application/json\r\ncontent-length: "
        _head_cache = (default_headers, lines)
    return lines


class WebhookProtocol(asyncio.Protocol):
    """uvicorn's HTTP protocol class for `autopilot serve`; `config.app` must be the app of
    `server.create_app` (its state holds the runtime once started)."""

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._config = config
        self._server_state = server_state
        self._app_state = app_state
        self._loop = _loop or asyncio.get_event_loop()
        self._state = getattr(config.app, "state", None)
        self._transport: asyncio.Transport | None = None
        self._buffer = b""
        self._answering = False  # a webhook's run is being recorded
        self._paused = False
        self._closing = False  # close once the pending answer is written
        self._idle: asyncio.TimerHandle | None = None

    # asyncio's protocol interface

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._server_state.connections.add(self)  # type: ignore[arg-type]
        runtime = getattr(self._state, "runtime", None)
        if runtime is not None:
            runtime.recorder.expect()  # a burst's batch waits for what this brings

    def data_received(self, data: bytes) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        self._buffer = self._buffer + data if self._buffer else data
        if self._answering:  # pipelined: read on once the pending answer is written
            if len(self._buffer) > _MAX_HEAD + MAX_BODY_BYTES and not self._paused:
                self._paused = True
                assert self._transport is not None
                self._transport.pause_reading()
            return
        self._next()

    def connection_lost(self, exc: Exception | None) -> None:
        self._server_state.connections.discard(self)
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        self._transport = None

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown: close now, or once the pending answer is written."""
        if self._answering:
            self._closing = True
        elif self._transport is not None:
            self._transport.close()

    # the webhooks

    def _next(self) -> None:
        """Take the complete requests at the front of the buffer, one at a time."""
        while self._transport is not None and not self._answering and self._buffer:
            buffer = self._buffer
            if not buffer.startswith(_PREFIX):
                if not _PREFIX.startswith(buffer):
                    self._hand_over()
                return  # else: the start of one, so far
            end = buffer.find(b"\r\n\r\n", 0, _MAX_HEAD)
            if end < 0:
                if len(buffer) >= _MAX_HEAD:
                    self._hand_over()
                return
            request = self._parse(buffer[:end])
            if request is None:
                self._hand_over()
                return
            stop = end + 4 + request.length
            if len(buffer) < stop:
                return  # the body is on its way
            self._buffer = buffer[stop:]
            self._receive(request, buffer[end + 4:stop])

    def _parse(self, head: bytes) -> _Webhook | None:
        """The webhook of a request head, or None when uvicorn should answer it."""
        runtime = getattr(self._state, "runtime", None)
        if runtime is None or b"%00" in head:  # starting; or a NUL for the app to refuse
            return None
        lines = head.split(b"\r\n")
        matched = _REQUEST_LINE.fullmatch(lines[0])
        if matched is None:
            return None
        model_id = matched.group(1).decode("ascii")
        model = runtime.models_by_id.get(model_id)
        if model is None:  # perhaps one configured by name: the app asks Numerai
            return None
        length: int | None = None
        close = False
        trace = None
        for line in lines[1:]:
            header = _HEADER.fullmatch(line)
            if header is None:
                return None
            name, value = header.group(1).lower(), header.group(2)
            if name == b"content-length":
                if length is not None or not value.isdigit() or len(value) > 9:
                    return None
                length = int(value)
            elif name in (b"transfer-encoding", b"expect", b"upgrade"):
                return None
            elif name == b"connection":
                close = b"close" in {token.strip().lower() for token in value.split(b",")}
            elif name == b"x-cloud-trace-context":
                trace = cloud_trace(value)
        if length is None or length > MAX_BODY_BYTES:
            return None
        return _Webhook(model, model_id, matched.group(2) or b"", length, close, trace)

    def _receive(self, request: _Webhook, body: bytes) -> None:
        started = time.perf_counter()
        runtime: Runtime = self._state.runtime  # type: ignore[union-attr]
        try:
            if not webhook.token_ok(runtime.config, request.model_id, request.query):
                self._answer(request, started, *webhook.UNAUTHORIZED)
                return
            new = webhook.new_run(request.model, request.model_id, body)
            if isinstance(new, tuple):
                self._answer(request, started, *new)
                return
            future = runtime.recorder.submit(new)
        except Exception as exc:  # noqa: BLE001  (a bug: answered 500 and logged, as the app does)
            self._answer(request, started, *webhook.failed(request.model_id, exc))
            return
        self._answering = True
        future.add_done_callback(lambda done: self._recorded(request, started, new, done))

    def _recorded(self, request: _Webhook, started: float, new: NewRun,
                  future: asyncio.Future[tuple[Run, bool]]) -> None:
        runtime: Runtime = self._state.runtime  # type: ignore[union-attr]
        token = current_trace.set(request.trace) if request.trace else None
        try:
            if future.cancelled():
                status, answer = webhook.failed(request.model_id, asyncio.CancelledError())
            elif (exc := future.exception()) is not None:
                status, answer = webhook.failed(request.model_id, exc)
            else:
                status, answer = webhook.recorded(runtime, new, future.result())
        finally:
            if token is not None:
                current_trace.reset(token)
        self._answering = False
        self._answer(request, started, status, answer)
        if self._paused and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()
        self._next()

    def _answer(self, request: _Webhook, started: float, status: int,
                answer: dict[str, Any]) -> None:
        transport = self._transport
        webhook.observe(self._state.runtime, status, started)  # type: ignore[union-attr]
        if transport is None:
            return  # the client left; the run, if any, is recorded
        body = webhook.answer_body(answer)
        close = request.close or self._closing
        if close:
            _cork(transport)
        transport.write(b"%s%s%d\r\n%s\r\n%s" % (
            _STATUS[status], _common_head(self._server_state.default_headers), len(body),
            b"connection: close\r\n" if close else b"", body))
        if close:
            transport.close()
        elif not self._buffer:
            self._idle = self._loop.call_later(self._config.timeout_keep_alive, transport.close)

    def _hand_over(self) -> None:
        """The connection, with what it has sent and we did not take, to uvicorn's protocol."""
        transport = self._transport
        assert transport is not None
        self._server_state.connections.discard(self)
        if self._paused:
            self._paused = False
            transport.resume_reading()
        protocol = AutoHTTPProtocol(config=self._config,  # type: ignore[call-arg]
                                    server_state=self._server_state,
                                    app_state=self._app_state, _loop=self._loop)
        self._transport = None
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        data, self._buffer = self._buffer, b""
        protocol.data_received(data)
