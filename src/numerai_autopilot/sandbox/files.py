"""Presigned-style file URLs: dataset downloads (GET, with Range) and submission uploads (PUT).

A URL carries ``expires`` (unix time), a credential and a session token, and last a
``signature``: HMAC-SHA256 of the method, the path and the query's exact bytes before it,
under a key that never leaves the process. Like an S3 presigned URL's, the query holds
percent-escapes (``%2F``, ``%2B``, ``%3D``), and bare ``+`` and ``=`` too. Stricter than S3
(whose signature covers a canonical form of the query), any change to those bytes is
refused: a client must send a presigned URL exactly as it was given.

The file endpoints answer like S3: 403 ``AccessDenied`` / ``SignatureDoesNotMatch`` XML for
expired or forged URLs, 404 ``NoSuchKey``, 206 for ranges, 416 for impossible ranges. They
need no API key. Each download and upload is recorded with the query as it arrived.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .injection import drop_connection
from .submissions import check_upload

if TYPE_CHECKING:
    from .entities import DownloadRecord
    from .state import Sandbox

CHUNK = 64 * 1024
# What S3 puts in a presigned URL's query (X-Amz-Credential=AKIA...%2F20240101%2Fus-east-1
# %2Fs3%2Faws4_request), plus a session token with the characters a re-encoding client
# changes: the signature covers these bytes as sent.
_CREDENTIAL = "credential=SANDBOX%2F{day}%2Fsandbox%2Fs3%2Faws4_request"
_SESSION = "session=c2FuZGJveA%2Bc2Vzc2lvbg%3D%3D+dG9rZW4=="


@dataclass(frozen=True)
class UrlSigner:
    key: bytes
    ttl_s: float

    @classmethod
    def random(cls, ttl_s: float) -> UrlSigner:
        return cls(secrets.token_bytes(32), ttl_s)

    def _mac(self, method: str, path: str, query: str) -> str:
        message = f"{method.upper()}\n{path}\n{query}".encode()
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()

    def sign(self, base_url: str, method: str, path: str, ttl_s: float | None = None) -> str:
        """A full URL for ``method`` on ``path`` (e.g. ``/files/8/1100/v5.3/live.parquet``)."""
        expires = int(time.time() + (self.ttl_s if ttl_s is None else ttl_s))
        day = time.strftime("%Y%m%d", time.gmtime())
        query = f"expires={expires}&{_CREDENTIAL.format(day=day)}&{_SESSION}"
        mac = self._mac(method, path, query)
        return f"{base_url.rstrip('/')}{quote(path)}?{query}&signature={mac}"

    def check(self, method: str, path: str, raw_query: bytes) -> Response | None:
        """None if the URL is good, else the S3-like refusal to send.

        ``raw_query`` is the query string as it arrived (ASGI's ``query_string``): the
        signature covers its bytes before ``&signature=``, not their decoded meaning.
        """
        signed, found, signature = raw_query.decode("latin-1").rpartition("&signature=")
        signature = signature.split("&", 1)[0]
        expires = dict(parse_qsl(signed)).get("expires")
        if not found or not signature or not expires:
            return s3_error(403, "AccessDenied", "Query-string authentication requires the "
                            "expires and signature parameters")
        try:
            when = int(expires)
        except ValueError:
            return s3_error(403, "AccessDenied", "Invalid date (should be seconds since epoch)")
        if not hmac.compare_digest(self._mac(method, path, signed), signature):
            return s3_error(403, "SignatureDoesNotMatch", "The request signature we calculated "
                            "does not match the signature you provided.")
        if time.time() > when:
            return s3_error(403, "AccessDenied", "Request has expired")
        return None


def s3_error(status: int, code: str, message: str) -> Response:
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{message}</Message></Error>")
    return Response(body, status_code=status, media_type="application/xml")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None | str:
    """``bytes=a-b`` -> (start, end inclusive); None for no/ignored range; "bad" for a 416."""
    if not header or not header.startswith("bytes="):
        return None
    first = header[len("bytes="):].split(",")[0].strip()
    start_text, sep, end_text = first.partition("-")
    if not sep:
        return "bad"
    try:
        if not start_text:  # suffix: the last N bytes
            length = int(end_text)
            if length <= 0:
                return "bad"
            return max(0, size - length), size - 1
        start = int(start_text)
        end = int(end_text) if end_text else size - 1
    except ValueError:
        return "bad"
    if start >= size or end < start:
        return "bad"
    return start, min(end, size - 1)


class FileStream(Response):
    """Streams part of a file from disk, throttled or cut short as the faults say."""

    def __init__(self, sandbox: Sandbox, path: Path, start: int, end: int, status: int,
                 headers: dict[str, str], record: DownloadRecord | None) -> None:
        super().__init__(status_code=status, headers=headers)
        self.sandbox, self.path, self.start, self.end, self.record = (
            sandbox, path, start, end, record)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})
        if scope["method"] == "HEAD":
            await send({"type": "http.response.body", "body": b""})
            return
        bandwidth, cut_after = self.sandbox.faults.download_limits()
        chunk = CHUNK if not bandwidth else max(1024, min(CHUNK, bandwidth // 10))
        sent, remaining = 0, self.end - self.start + 1
        try:
            async with await anyio.open_file(self.path, "rb") as handle:
                await handle.seek(self.start)
                while remaining > 0:
                    size = min(chunk, remaining)
                    if cut_after is not None:
                        size = min(size, cut_after - sent)
                        if size <= 0:
                            self.sandbox.faults.note_cut()
                            await drop_connection(scope, flush=True)
                            return
                    data = await handle.read(size)
                    if not data:
                        break
                    await send({"type": "http.response.body", "body": data, "more_body": True})
                    sent += len(data)
                    remaining -= len(data)
                    if bandwidth:
                        await anyio.sleep(len(data) / bandwidth)
            await send({"type": "http.response.body", "body": b""})
        finally:
            if self.record is not None:
                self.sandbox.finish_download(self.record, sent)


async def download(request: Request) -> Response:
    """``GET /files/{tournament}/{round}/{filename}``: a dataset file."""
    sandbox: Sandbox = request.app.state.sandbox
    path = request.url.path
    query = request.scope["query_string"]
    refusal = sandbox.signer.check("GET", path, query)
    if refusal is not None:
        return refusal
    parts = path.split("/", 4)  # "", "files", tournament, round, filename
    try:
        tournament, round_number, filename = int(parts[2]), int(parts[3]), parts[4]
    except (IndexError, ValueError):
        return s3_error(404, "NoSuchKey", "The specified key does not exist.")
    file_path = sandbox.data.path(filename, round_number)
    if not file_path.is_file():
        return s3_error(404, "NoSuchKey", "The specified key does not exist.")
    size = file_path.stat().st_size
    stat = file_path.stat()
    headers = {
        "accept-ranges": "bytes",
        "content-type": "application/json" if filename.endswith(".json")
        else "application/octet-stream",
        "etag": f'"{stat.st_mtime_ns:x}-{size:x}"',
    }
    wanted = parse_range(request.headers.get("range"), size)
    if wanted == "bad":
        return s3_error(416, "InvalidRange", "The requested range is not satisfiable")
    start, end, status = 0, size - 1, 200
    if isinstance(wanted, tuple):
        start, end, status = wanted[0], wanted[1], 206
        headers["content-range"] = f"bytes {start}-{end}/{size}"
    headers["content-length"] = str(end - start + 1)
    record = None
    if request.method == "GET":
        record = sandbox.start_download(
            filename, tournament, round_number if sandbox.data.is_live(filename) else None,
            start, end - start + 1, size, status, query.decode("latin-1"))
    return FileStream(sandbox, file_path, start, end, status, headers, record)


async def upload(request: Request) -> Response:
    """``PUT /uploads/{model_id}/{nonce}/{filename}``: a submission file."""
    sandbox: Sandbox = request.app.state.sandbox
    path = request.url.path
    key = path[len("/uploads/"):]
    body = await request.body()
    query = request.scope["query_string"].decode("latin-1")
    refusal = sandbox.signer.check("PUT", path, request.scope["query_string"])
    if refusal is not None:
        sandbox.record_upload(key, body, refusal.status_code, None, "refused: bad or expired URL",
                              query=query)
        return refusal
    slot = sandbox.slots.get(key)
    if slot is None:
        sandbox.record_upload(key, body, 404, None, "no such upload", query=query)
        return s3_error(404, "NoSuchUpload", "The specified upload does not exist.")
    if sandbox.faults.put_fails():
        sandbox.record_upload(key, body, 500, None, "injected PUT failure", query=query)
        return s3_error(500, "InternalError", "We encountered an internal error. Please try "
                        "again.")

    def inspect() -> None:
        keys = sandbox.data.round_keys(slot.tournament, slot.round_number)
        check = check_upload(body, slot.original_filename, slot.tournament, keys)
        target = sandbox.settings.data_dir / "uploads" / key
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(body)
        os.replace(tmp, target)
        sandbox.record_upload(key, body, 200, check, query=query)

    await anyio.to_thread.run_sync(inspect)
    etag = hashlib.md5(body, usedforsecurity=False).hexdigest()
    return Response(status_code=200, headers={"etag": f'"{etag}"'})
