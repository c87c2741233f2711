"""httpx's API on aiohttp's connections: the HTTP client of the server's Numerai calls.

    http = async_client(timeout=30)          # an httpx.AsyncClient
    resp = await http.post(url, json=body)   # httpx's requests, responses and exceptions

A round makes three Numerai calls per model (upload URL, PUT, create submission) on the
server's one event loop, beside the webhooks, the ledger and the Dask client. httpx's own
transport (httpcore on anyio) cost ~1.9 ms of that loop's CPU per request at 20 requests in
flight on a 2-core machine; this one ~0.5 ms (`bench/http_client.py`). httpx still builds
the requests and reads the responses, so every caller, timeout and error path stays as it
was: aiohttp's exceptions are raised as the httpx exceptions that mean the same thing.

What httpx keeps doing itself: redirects, cookies, decompression, the headers it sets. So
aiohttp sends the request as httpx built it: no cookie jar, no automatic decompression, no
Content-Type or User-Agent of its own.

aiohttp is imported on first use (~0.2 s, most of it loading the system's CA certificates),
and httpx's certificates are loaded once per process (~45 ms): `warm_up()` does both off the
event loop at the server's start, after the port is open.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    import aiohttp


def warm_up() -> None:
    """Import aiohttp and load the CA certificates (call it in a thread)."""
    import aiohttp  # noqa: F401

    _ssl_context(trust_env=True)


@functools.cache
def _ssl_context(*, trust_env: bool) -> ssl.SSLContext:
    """httpx's TLS settings (certifi, or SSL_CERT_FILE / SSL_CERT_DIR when trusting the
    environment), made once per process: loading the certificates takes ~45 ms, which a
    session made on the first request would spend on the event loop."""
    return httpx.create_ssl_context(trust_env=trust_env)


@functools.cache
def _errors() -> tuple[tuple[type[BaseException], type[httpx.TransportError]], ...]:
    """aiohttp's exceptions and the httpx ones they become, the most specific first."""
    import aiohttp

    return (
        (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
        (aiohttp.SocketTimeoutError, httpx.ReadTimeout),
        (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
        (aiohttp.ClientConnectorError, httpx.ConnectError),  # refused, DNS, TLS handshake
        (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),  # closed, no answer
        (aiohttp.ClientPayloadError, httpx.RemoteProtocolError),  # closed mid-body
        (aiohttp.ClientResponseError, httpx.RemoteProtocolError),  # not valid HTTP
        (aiohttp.InvalidURL, httpx.UnsupportedProtocol),
        (aiohttp.ClientOSError, httpx.ReadError),  # reset by peer, broken pipe
        (aiohttp.ClientConnectionError, httpx.NetworkError),
        (aiohttp.ClientError, httpx.TransportError),
        (TimeoutError, httpx.PoolTimeout),  # aiohttp's `connect`: waiting for the pool
    )


@contextmanager
def _as_httpx_errors(request: httpx.Request) -> Iterator[None]:
    import aiohttp

    try:
        yield
    except (TimeoutError, aiohttp.ClientError) as exc:
        for source, target in _errors():
            if isinstance(exc, source):
                message = str(exc) or type(exc).__name__
                raise target(f"{message} ({type(exc).__name__})", request=request) from exc
        raise  # pragma: no cover  (the last two entries catch everything above)


class _Body(httpx.AsyncByteStream):
    """The response body as aiohttp receives it (whatever has arrived, no fixed chunks)."""

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_httpx_errors(self._request):
            async for chunk in self._response.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        if self._response.content.at_eof():
            self._response.release()  # the connection goes back to the pool
        else:
            self._response.close()  # abandoned mid-body: the connection cannot be reused


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An httpx transport sending through one aiohttp session, made on first use (it
    belongs to the running event loop; a client used from another loop gets a new one)."""

    def __init__(self, *, limits: httpx.Limits | None = None, trust_env: bool = True) -> None:
        self._limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
        self._trust_env = trust_env
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _client(self) -> aiohttp.ClientSession:
        import aiohttp

        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            connector = aiohttp.TCPConnector(
                limit=self._limits.max_connections or 0,
                keepalive_timeout=self._limits.keepalive_expiry or 5.0,
                ssl=_ssl_context(trust_env=self._trust_env),
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                skip_auto_headers=("Content-Type", "User-Agent"),
                # HTTP(S)_PROXY and NO_PROXY, as httpx does; only when a proxy is set:
                # aiohttp reads the environment again on every request (half this
                # transport's CPU per call, measured)
                trust_env=self._trust_env and bool(urllib.request.getproxies()),
            )
            self._loop = loop
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        import aiohttp
        from multidict import CIMultiDict

        timeout: dict[str, float | None] = request.extensions.get("timeout", {})
        headers = CIMultiDict(request.headers.multi_items())
        data: Any
        try:
            data = request.content or None
        except httpx.RequestNotRead:  # a streamed body: aiohttp chunks it itself
            data = request.stream
            headers.popall("transfer-encoding", None)
        with _as_httpx_errors(request):
            response = await self._client().request(
                request.method,
                str(request.url),
                headers=headers,
                data=data,
                allow_redirects=False,
                compress=False,
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=timeout.get("pool"),
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                ),
            )
        extensions: dict[str, Any] = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode("latin-1", "replace")
        return httpx.Response(
            status_code=response.status,
            headers=list(response.raw_headers),
            stream=_Body(response, request),
            request=request,
            extensions=extensions,
        )

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()


def async_client(**kwargs: Any) -> httpx.AsyncClient:
    """An httpx.AsyncClient on the aiohttp transport; takes httpx.AsyncClient's arguments
    (``limits`` and ``trust_env`` go to the transport)."""
    transport = AiohttpTransport(limits=kwargs.pop("limits", None),
                                 trust_env=kwargs.get("trust_env", True))
    return httpx.AsyncClient(transport=transport, **kwargs)
