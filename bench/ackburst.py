"""A burst of webhooks at once, timed on the client with a minimal asyncio HTTP/1.1 client.

Each request opens its own connection (as Numerai's webhooks do), writes a prepared request
and reads the answer; the time counts from just before connecting to the last byte of the
answer. `client_floor` times the same burst against a bare asyncio responder in another
process: what the client, the kernel and the loop add on their own.
"""

from __future__ import annotations

import asyncio
import json
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


async def _one(host: str, port: int, payload: bytes, gate: asyncio.Event,
               connected: bool) -> tuple[float, int]:
    if connected:  # as a proxy in front of the server would: the connection already open
        reader, writer = await asyncio.open_connection(host, port)
        await gate.wait()
        start = time.perf_counter()
    else:
        await gate.wait()
        start = time.perf_counter()
        reader, writer = await asyncio.open_connection(host, port)
    writer.write(payload)
    await writer.drain()
    answer = await reader.read()  # Connection: close: the server ends the stream
    took = time.perf_counter() - start
    writer.close()
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0
    return took * 1000, status


async def _burst(requests: Sequence[tuple[str, bytes]], connected: bool) -> Burst:
    gate = asyncio.Event()
    prepared = [_request(url, body) for url, body in requests]
    tasks = [asyncio.create_task(_one(host, port, payload, gate, connected))
             for host, port, payload in prepared]
    await asyncio.sleep(0.5 if connected else 0.05)  # every task is waiting at the gate
    gate.set()
    results = await asyncio.gather(*tasks)
    return Burst([r[0] for r in results], [r[1] for r in results])


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
    requests = [(url, body.encode()) for url, body in order["requests"]]
    result = asyncio.run(_burst(requests, bool(order["connected"])))
    json.dump({"latencies_ms": result.latencies_ms, "statuses": result.statuses}, sys.stdout)


def webhook_body(round_number: int, trigger_id: str) -> bytes:
    return json.dumps({"roundNumber": round_number, "dataVersion": 1,
                       "triggerId": trigger_id}).encode()


_RESPONDER = r"""
import asyncio, sys
ANSWER = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}"
async def handle(reader, writer):
    head = await reader.readuntil(b"\r\n\r\n")
    length = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")]
    if length: await reader.readexactly(length[0])
    writer.write(ANSWER); await writer.drain(); writer.close()
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]), backlog=4096)
    print("ready", flush=True)
    async with server: await server.serve_forever()
asyncio.run(main())
"""


def client_floor(n: int, connected: bool = False) -> Burst:
    """The same burst against a bare asyncio responder: the client's own share."""
    port = free_port()
    proc = subprocess.Popen([PYTHON, "-c", _RESPONDER, str(port)], stdout=subprocess.PIPE,
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
