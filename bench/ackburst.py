"""A burst of webhooks at once, timed on the client, with a minimal client of plain sockets.

Each request opens its own connection (as Numerai's webhooks do), writes a prepared request
and reads the answer; the time counts from just before connecting to the last byte of the
answer. The client is one thread multiplexing non-blocking sockets with `selectors`: no event
loop, stream or task objects per request. Against a bare responder it answers 200 requests
in 5-7 ms (p99), where an asyncio client took 30-40 ms of its own: on a 2-core machine the
client shares the cores with the server it measures, so its own cost is kept small.
`client_floor` times the same burst against a bare uvloop + httptools responder in another
process: what the client, the kernel and the least possible server add on their own.
"""

from __future__ import annotations

import json
import selectors
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from harness import PYTHON, free_port


@dataclass(frozen=True)
class Burst:
    latencies_ms: list[float]
    statuses: list[int]

    def quantile(self, q: float) -> float:
        ms = sorted(self.latencies_ms)
        return ms[min(len(ms) - 1, round(q * (len(ms) - 1)))]

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms)

    @property
    def p99(self) -> float:
        return self.quantile(0.99)


def _request(url: str, body: bytes) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    head = (f"POST {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n").encode()
    return parts.hostname or "127.0.0.1", parts.port or 80, head + body


def _send(sock: socket.socket, payload: bytes) -> None:
    if sock.send(payload) != len(payload):  # a webhook is far below a socket buffer
        raise RuntimeError("the request did not go out in one send")


def _burst(requests: Sequence[tuple[str, int, bytes]], connected: bool) -> Burst:
    """Every request at once on its own socket; (latency ms, status) each, in order.
    A status of 0: the connection failed or ended without an HTTP answer."""
    n = len(requests)
    selector = selectors.DefaultSelector()
    started = [0.0] * n
    took = [0.0] * n
    answers = [bytearray() for _ in range(n)]
    socks: list[socket.socket] = []
    if connected:  # as a proxy in front of the server would: the connection already open
        for host, port, _ in requests:
            sock = socket.create_connection((host, port))
            sock.setblocking(False)
            socks.append(sock)
        time.sleep(0.5)  # every connection accepted and idle
        for i, sock in enumerate(socks):
            started[i] = time.perf_counter()
            _send(sock, requests[i][2])
            selector.register(sock, selectors.EVENT_READ, i)
    else:
        for _ in requests:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            socks.append(sock)
        for i, sock in enumerate(socks):
            host, port, _ = requests[i]
            started[i] = time.perf_counter()
            sock.connect_ex((host, port))  # EINPROGRESS: writable once connected
            selector.register(sock, selectors.EVENT_WRITE, i)
    left = n
    while left:
        ready = selector.select(timeout=120)
        if not ready:
            raise RuntimeError(f"{left} of {n} requests unanswered after 120 s")
        for key, events in ready:
            sock, i = key.fileobj, key.data
            assert isinstance(sock, socket.socket)
            try:
                if events & selectors.EVENT_WRITE:
                    if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                        _send(sock, requests[i][2])
                        selector.modify(sock, selectors.EVENT_READ, i)
                        continue
                    chunk = b""  # the connection failed
                else:
                    chunk = sock.recv(65536)
            except ConnectionError:
                chunk = b""
            if chunk:
                answers[i] += chunk
                continue
            took[i] = time.perf_counter() - started[i]  # Connection: close: the answer ended
            selector.unregister(sock)
            sock.close()
            left -= 1
    selector.close()
    statuses = [int(a.split(b" ", 2)[1]) if a.startswith(b"HTTP/") else 0 for a in answers]
    return Burst([t * 1000 for t in took], statuses)


def burst(requests: Sequence[tuple[str, bytes]], connected: bool = False) -> Burst:
    """POST every (url, body) at once from a fresh client process; returns per-request
    latency and status. A process of its own: the benchmark's own heap (and its garbage
    collections) must not be timed as the server's answers. `connected`: each connection is
    opened before the burst and the time counts from writing the request, as behind a
    proxy (Caddy, Cloud Run's front end) that keeps connections to the server open."""
    order = json.dumps({"connected": connected,
                        "requests": [[url, body.decode()] for url, body in requests]})
    done = subprocess.run([PYTHON, __file__], input=order.encode(), capture_output=True,
                          check=True, timeout=300)
    measured = json.loads(done.stdout)
    return Burst(measured["latencies_ms"], measured["statuses"])


def _client_main() -> None:
    order = json.load(sys.stdin)
    requests = [_request(url, body.encode()) for url, body in order["requests"]]
    result = _burst(requests, bool(order["connected"]))
    json.dump({"latencies_ms": result.latencies_ms, "statuses": result.statuses}, sys.stdout)


def webhook_body(round_number: int, trigger_id: str) -> bytes:
    return json.dumps({"roundNumber": round_number, "dataVersion": 1,
                       "triggerId": trigger_id}).encode()


# A bare uvloop + httptools responder: argv port, then µs of Python work per request (0 for
# the floor); several may share the port (SO_REUSEPORT; `ack_ceiling.py`).
RESPONDER = r"""
import asyncio, socket, sys, time
import httptools, uvloop
COST = float(sys.argv[2]) / 1e6
ANSWER = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}"
class Responder(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.parser = transport, httptools.HttpRequestParser(self)
    def data_received(self, data):
        self.parser.feed_data(data)
    def on_message_complete(self):
        end = time.perf_counter() + COST
        while time.perf_counter() < end:
            pass
        self.transport.write(ANSWER)
        self.transport.close()
async def main():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", int(sys.argv[1])))
    sock.listen(4096)
    server = await asyncio.get_running_loop().create_server(Responder, sock=sock)
    print("ready", flush=True)
    await server.serve_forever()
uvloop.run(main())
"""


def client_floor(n: int, connected: bool = False) -> Burst:
    """The same burst against a bare uvloop + httptools responder: the client's own share,
    with the kernel's and the least a Python server can do."""
    port = free_port()
    proc = subprocess.Popen([PYTHON, "-c", RESPONDER, str(port), "0"], stdout=subprocess.PIPE,
                            stderr=sys.stderr)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        body = webhook_body(1, "floor")
        return burst([(f"http://127.0.0.1:{port}/pred/x?token=t", body)] * n, connected)
    finally:
        proc.kill()
        proc.wait()


if __name__ == "__main__":
    _client_main()
