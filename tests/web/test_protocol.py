"""The webhook's protocol-level path (`server.protocol.WebhookProtocol`) over raw sockets.

Plain webhooks are answered by the protocol itself; anything else on the connection goes to
uvicorn and the app. Both must give the same answers, keep a connection's answers in order,
and lose no byte at the hand-over.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from server_harness import RunningServer, StartServer, predictor

from numerai_autopilot.web import webhook


@pytest.fixture
def server(start_server: StartServer) -> RunningServer:
    return start_server({"alpha": predictor("good"), "beta": predictor("good")})


def body(round_number: Any = 1101, trigger: str | None = None) -> bytes:
    return json.dumps({"roundNumber": round_number, "dataVersion": 1,
                       "triggerId": trigger or str(uuid.uuid4())}).encode()


def request(server: RunningServer, model: str, payload: bytes, *, target: str | None = None,
            headers: str = "", chunked: bool = False, close: bool = False) -> bytes:
    parts = urlsplit(server.hook_url(model))
    target = target or f"{parts.path}?{parts.query}"
    head = f"POST {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
    head += headers + ("Connection: close\r\n" if close else "")
    if chunked:
        return (head + "Transfer-Encoding: chunked\r\n\r\n").encode() + b"%x\r\n%s\r\n0\r\n\r\n" % (
            len(payload), payload)
    return (head + f"Content-Length: {len(payload)}\r\n\r\n").encode() + payload


class Conn:
    """One client connection; reads answers (Content-Length bodies) one at a time."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
        self.buffer = b""

    def send(self, data: bytes, *, pieces: int = 1) -> None:
        step = max(1, -(-len(data) // pieces))
        for start in range(0, len(data), step):
            self.sock.sendall(data[start:start + step])
            if pieces > 1:
                time.sleep(0.02)  # separate segments for the server to put together

    def answer(self) -> tuple[int, dict[str, str], bytes]:
        """The next final answer (a "100 Continue" is passed over)."""
        while b"\r\n\r\n" not in self.buffer:
            self._read()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        if 100 <= status < 200:
            return self.answer()
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            self._read()
        content, self.buffer = self.buffer[:length], self.buffer[length:]
        return status, headers, content

    def closed_by_server(self) -> bool:
        return self.sock.recv(1) == b""

    def _read(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed by the server; unread: {self.buffer!r}")
        self.buffer += chunk

    def close(self) -> None:
        self.sock.close()


def test_webhooks_on_one_kept_alive_connection(server: RunningServer) -> None:
    conn = Conn(server.url)
    try:
        ids = []
        for model in ("alpha", "beta", "alpha"):
            conn.send(request(server, model, body()))
            status, headers, content = conn.answer()
            assert status == 200 and headers["content-type"] == "application/json"
            assert "date" in headers and "connection" not in headers
            ids.append(json.loads(content)["run_id"])
        conn.send(request(server, "beta", body(), close=True))
        status, headers, content = conn.answer()
        assert status == 200 and headers["connection"] == "close"
        assert json.loads(content)["created"] is True
        assert conn.closed_by_server()
    finally:
        conn.close()
    recorded = {run.id for run in server.runs()}
    assert set(ids) <= recorded and len(set(ids)) == 3


def test_pipelined_webhooks_then_another_request_are_answered_in_order(
    server: RunningServer,
) -> None:
    trigger = str(uuid.uuid4())
    conn = Conn(server.url)
    try:
        conn.send(request(server, "alpha", body(trigger=trigger))
                  + request(server, "alpha", body(trigger=trigger))  # the same trigger again
                  + request(server, "beta", body(), headers="X-Token: x\r\n")
                  + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"  # handed over to uvicorn
                  + request(server, "alpha", body(), close=True))  # then answered by the app
        answers = [conn.answer() for _ in range(5)]
    finally:
        conn.close()
    assert [status for status, _, _ in answers] == [200] * 5
    first, again, beta, health, last = (json.loads(content) for _, _, content in answers)
    assert first["created"] and not again["created"] and again["run_id"] == first["run_id"]
    assert beta["created"] and last["created"] and "executor_ready" in health


@pytest.mark.parametrize("pieces", [2, 7, 40])
def test_a_request_in_pieces_is_put_together(server: RunningServer, pieces: int) -> None:
    conn = Conn(server.url)
    try:
        conn.send(request(server, "alpha", body(), close=True), pieces=pieces)
        status, _, content = conn.answer()
    finally:
        conn.close()
    assert status == 200 and json.loads(content)["created"] is True


def _answers(server: RunningServer, raw: bytes) -> tuple[int, dict[str, Any]]:
    conn = Conn(server.url)
    try:
        conn.send(raw)
        status, _, content = conn.answer()
    finally:
        conn.close()
    return status, json.loads(content)


@pytest.mark.parametrize(("name", "payload", "token", "status"), [
    ("recorded", None, True, 200),
    ("bad token", None, False, 401),
    ("not JSON", b"{", True, 422),
    ("no trigger", b'{"roundNumber": 1101}', True, 422),
    ("bad round", b'{"roundNumber": -1, "triggerId": "t"}', True, 422),
])
def test_the_protocol_and_the_app_answer_alike(
    server: RunningServer, name: str, payload: bytes | None, token: bool, status: int
) -> None:
    """The same request plain (answered by the protocol) and chunked (which it leaves to
    uvicorn and the app's webhook endpoint)."""
    target = None if token else f"/pred/{server.model_id('alpha')}?token=wrong"
    plain = _answers(server, request(server, "alpha", payload or body(), target=target,
                                     close=True))
    chunked = _answers(server, request(server, "alpha", payload or body(), target=target,
                                       chunked=True, close=True))
    assert plain[0] == chunked[0] == status, name
    if status == 200:
        assert plain[1].keys() == chunked[1].keys() == {"run_id", "state", "created"}
        assert plain[1]["run_id"] != chunked[1]["run_id"]
    else:
        assert plain[1] == chunked[1]


@pytest.mark.parametrize(("name", "target", "headers", "status"), [
    ("percent-encoded id", "/pred/{escaped}?token={token}", "", 200),
    ("Expect: 100-continue", None, "Expect: 100-continue\r\n", 200),
    ("unknown model", "/pred/no-such-model?token={token}", "", 401),
    ("NUL in the query", "/pred/{id}?token={token}%00", "", 400),
    ("a path below the id", "/pred/{id}/more?token={token}", "", 404),
])
def test_what_the_protocol_leaves_to_the_app(
    server: RunningServer, name: str, target: str | None, headers: str, status: int
) -> None:
    model_id = server.model_id("alpha")
    token = urlsplit(server.hook_url("alpha")).query.removeprefix("token=")
    escaped = "".join(f"%{b:02X}" for b in model_id.encode())
    if target is not None:
        target = target.format(id=model_id, token=token, escaped=escaped)
    got, _ = _answers(server, request(server, "alpha", body(), target=target, headers=headers,
                                      close=True))
    assert got == status, name


def test_a_get_on_the_webhook_is_405_and_a_large_body_413(server: RunningServer) -> None:
    parts = urlsplit(server.hook_url("alpha"))
    got, _ = _answers(server, f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: x\r\n"
                              "Connection: close\r\n\r\n".encode())
    assert got == 405
    got, answer = _answers(server, request(server, "alpha", b" " * (64 * 1024 + 1), close=True))
    assert got == 413 and "64 KiB" in answer["error"]


def test_fast_answers_are_counted_in_the_metrics(server: RunningServer) -> None:
    def count(status: str) -> float:
        text = httpx.get(f"{server.url}/metrics").text
        prefix = f'autopilot_webhook_answer_seconds_count{{status="{status}"}} '
        return sum(float(line.removeprefix(prefix)) for line in text.splitlines()
                   if line.startswith(prefix))

    before_200, before_401 = count("200"), count("401")
    _answers(server, request(server, "alpha", body(), close=True))
    _answers(server, request(server, "alpha", body(), close=True,
                             target=f"/pred/{server.model_id('alpha')}?token=bad"))
    assert count("200") == before_200 + 1 and count("401") == before_401 + 1


def test_answers_carry_the_current_date(server: RunningServer) -> None:
    """The answers' header lines are made once per uvicorn header list, which uvicorn
    replaces each second for its date: a later answer carries the later date."""
    conn = Conn(server.url)
    try:
        dates = []
        for _ in range(2):
            conn.send(request(server, "alpha", body()))
            status, headers, _ = conn.answer()
            assert status == 200
            dates.append(parsedate_to_datetime(headers["date"]))
            assert abs(dates[-1].timestamp() - time.time()) < 3
            time.sleep(1.2)
        assert dates[1] > dates[0]
    finally:
        conn.close()


@pytest.mark.parametrize("answer", [
    {"run_id": "0190c0de-1234-7abc-8def-0123456789ab", "state": "queued", "created": True},
    {"run_id": "r-1", "state": "skipped", "created": False},
    {"run_id": 'a "quoted" \\ id\n\u00e9\U0001f600', "state": "queued", "created": True},
    {"state": "queued", "run_id": "r-1", "created": True},  # another key order
    {"run_id": "r-1", "state": "queued", "created": 1},  # not a bool
    {"run_id": None, "state": "queued", "created": True},
    {"error": "invalid or missing token", "field": None},
])
def test_an_answer_body_is_compact_json(answer: dict[str, Any]) -> None:
    assert webhook.answer_body(answer) == json.dumps(answer, separators=(",", ":")).encode()
