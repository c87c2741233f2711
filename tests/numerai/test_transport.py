"""The server's HTTP transport (aiohttp under httpx's API): what it sends, what a broken
server becomes, proxies. Raw sockets on 127.0.0.1 play the broken servers; the Numerai
client's own tests (conftest's `http`) run on this transport against the sandbox too."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from numerai_autopilot.numerai import NumeraiClient, TransientError
from numerai_autopilot.numerai.transport import AiohttpTransport, async_client

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[str]:
    """A TCP server on 127.0.0.1 running `handler` per connection; yields its base URL."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> tuple[list[str], bytes]:
    """The request's head lines and its Content-Length body."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")[:-2]
    length = next((int(line.split(":", 1)[1]) for line in head
                   if line.lower().startswith("content-length:")), 0)
    return head, await reader.readexactly(length)


def answer(body: bytes = b"{}", extra: str = "") -> bytes:
    return (f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{extra}"
            f"content-length: {len(body)}\r\n\r\n").encode() + body


async def test_the_request_goes_out_as_httpx_built_it() -> None:
    seen: list[list[str]] = []
    bodies: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head, body = await read_request(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            seen.append(head)
            bodies.append(body)
            writer.write(answer(extra="set-cookie: session=abc; Path=/\r\n"))
            await writer.drain()
        writer.close()

    async with raw_server(handler) as url, async_client(timeout=5) as http:
        url = url.replace("127.0.0.1", "localhost")  # a cookie jar ignores IP hosts
        first = await http.put(f"{url}/upload?sig=1", content=b"id,prediction\nn1,0.5\n",
                               headers={"x-amz-meta": "kept"})
        second = await http.post(f"{url}/graphql", json={"query": "{ a }"})
    assert first.status_code == second.status_code == 200
    assert first.json() == {} and first.reason_phrase == "OK"
    put = {line.split(":", 1)[0].lower(): line.split(":", 1)[1].strip() for line in seen[0][1:]}
    assert seen[0][0] == "PUT /upload?sig=1 HTTP/1.1"
    # a presigned PUT: no Content-Type of aiohttp's own, httpx's User-Agent, our header
    assert "content-type" not in put, put
    assert put["user-agent"].startswith("python-httpx/")
    assert put["x-amz-meta"] == "kept" and put["content-length"] == str(len(bodies[0]))
    assert bodies[0] == b"id,prediction\nn1,0.5\n"
    post = [line.lower() for line in seen[1][1:]]
    assert "content-type: application/json" in post
    # httpx keeps the cookie and sends it once; aiohttp's own jar is off
    assert [line for line in post if line.startswith("cookie:")] == ["cookie: session=abc"]
    assert bodies[1] == b'{"query":"{ a }"}'


async def test_nothing_listening_is_a_connect_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    async with async_client(timeout=5) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://127.0.0.1:{port}/")
        client = NumeraiClient(http, f"http://127.0.0.1:{port}/", timeout=2)
        with pytest.raises(TransientError, match=r"connection failed \(ConnectError: "):
            await client._gql.once("rounds", "{ rounds { number } }", {}, auth=False,
                                   remaining=2)


@pytest.mark.parametrize("breaks", ["closed before answering", "closed mid-body"])
async def test_a_server_that_hangs_up_is_a_protocol_error(breaks: str) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        if breaks == "closed mid-body":
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n" + b"x" * 100)
            await writer.drain()
        writer.close()

    async with raw_server(handler) as url, async_client(timeout=5) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get(f"{url}/file")


async def test_a_silent_server_is_a_read_timeout() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)
        writer.close()

    async with raw_server(handler) as url, async_client(timeout=0.3) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get(f"{url}/slow")


async def test_a_streamed_body_arrives_as_it_is_sent() -> None:
    release = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\nfirst")
        await writer.drain()
        await release.wait()
        writer.write(b"end")
        await writer.drain()
        writer.close()

    async with (raw_server(handler) as url, async_client(timeout=5) as http,
                http.stream("GET", f"{url}/big") as response):
        chunks = response.aiter_raw()
        assert await anext(chunks) == b"first"  # before the rest is sent
        release.set()
        assert b"".join([chunk async for chunk in chunks]) == b"end"


async def test_proxies_from_the_environment_are_used(monkeypatch: pytest.MonkeyPatch) -> None:
    lines: list[str] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head, _ = await read_request(reader)
        lines.append(head[0])
        writer.write(answer())
        await writer.drain()
        writer.close()

    async with raw_server(proxy) as url:
        monkeypatch.setenv("HTTP_PROXY", url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        async with async_client(timeout=5) as http:
            response = await http.get("http://numerai.invalid/graphql")
    assert response.status_code == 200
    assert lines == ["GET http://numerai.invalid/graphql HTTP/1.1"]


def test_one_client_serves_two_event_loops() -> None:
    # the aiohttp session belongs to a loop: a client used from a new loop makes a new one
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b'{"ok": true}'))
        await writer.drain()
        writer.close()

    transport = AiohttpTransport()
    http = httpx.AsyncClient(transport=transport, timeout=5)

    async def once() -> object:
        async with raw_server(handler) as url:
            result = (await http.get(f"{url}/")).json()
        return result

    assert asyncio.run(once()) == {"ok": True}
    assert asyncio.run(once()) == {"ok": True}
