"""A burst of webhooks at once, each on a new connection, timed on the client.

`burst(requests)` POSTs every (url, body) at the same moment and returns each answer's
latency and HTTP status. Each request opens its own connection (as Numerai's webhooks do);
its time counts from just before connecting to the last byte of the answer. The client runs
in a process of its own, one thread multiplexing non-blocking sockets with `selectors`, so
that its cost on the cores it shares with the server stays small and the benchmark's own
heap is not timed as the server's answers.
"""

from __future__ import annotations

import json
import resource
import selectors
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

PYTHON = sys.executable


@dataclass(frozen=True)
class Burst:
    """Per-request latency (ms) and status, in request order; status 0: no HTTP answer."""

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

    @property
    def max(self) -> float:
        return max(self.latencies_ms)

    def status_counts(self) -> dict[str, int]:
        """How many answers had each status, e.g. {"200": 1000}."""
        counts: dict[str, int] = {}
        for status in self.statuses:
            counts[str(status)] = counts.get(str(status), 0) + 1
        return counts


def webhook_body(round_number: int, trigger_id: str) -> bytes:
    """The JSON body Numerai POSTs to a model's webhook when a round opens."""
    return json.dumps({"roundNumber": round_number, "dataVersion": 1,
                       "triggerId": trigger_id}).encode()


def burst(requests: Sequence[tuple[str, bytes]]) -> Burst:
    """POST every (url, body) at once from a fresh client process, each on a new connection.

    Raises `subprocess.CalledProcessError` if the client fails (for instance, requests left
    unanswered for 120 s)."""
    order = json.dumps([[url, body.decode()] for url, body in requests])
    done = subprocess.run([PYTHON, __file__], input=order.encode(), capture_output=True,
                          check=True, timeout=300)
    measured = json.loads(done.stdout)
    return Burst(measured["latencies_ms"], measured["statuses"])


def _request(url: str, body: bytes) -> tuple[str, int, bytes]:
    """(host, port, the whole HTTP/1.1 request) for a POST of `body` to `url`."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    head = (f"POST {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n").encode()
    return parts.hostname or "127.0.0.1", parts.port or 80, head + body


def _send(sock: socket.socket, payload: bytes) -> None:
    if sock.send(payload) != len(payload):  # a webhook is far below a socket buffer
        raise RuntimeError("the request did not go out in one send")


def _burst(requests: Sequence[tuple[str, int, bytes]]) -> Burst:
    """Every request at once on its own new socket, in this thread."""
    n = len(requests)
    selector = selectors.DefaultSelector()
    started = [0.0] * n
    took = [0.0] * n
    answers = [bytearray() for _ in range(n)]
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in requests]
    for i, sock in enumerate(socks):
        sock.setblocking(False)
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
            i = key.data
            sock = socks[i]
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


def _client_main() -> None:
    """The client process: the requests as JSON on stdin, the measurements on stdout."""
    requests = [_request(url, body.encode()) for url, body in json.load(sys.stdin)]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < len(requests) + 64:  # a socket per request
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    result = _burst(requests)
    json.dump({"latencies_ms": result.latencies_ms, "statuses": result.statuses}, sys.stdout)


if __name__ == "__main__":
    _client_main()
