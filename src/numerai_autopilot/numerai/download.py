"""Streamed, resumable download of a presigned dataset URL to a local path.

The bytes go to ``<dest>.part`` next to ``dest`` and are renamed into place only once
their size matches what the server announced, so ``dest`` is either absent, the old
file, or complete. A dropped connection resumes from the ``.part`` file with an HTTP
Range request, also across processes. One writer per ``dest`` is assumed: the round data
cache downloads each file once (single flight). Redirects are followed, as numerapi's
``requests`` does, up to the HTTP client's ``max_redirects`` (httpx's default: 20); the URL
is requested exactly as Numerai gave it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from numerai_autopilot.numerai.errors import (
    NotFoundError,
    NumeraiError,
    TransientError,
    retry_after_seconds,
    safe_url,
    transient_status,
    translate_transport_error,
)
from numerai_autopilot.numerai.results import DownloadResult
from numerai_autopilot.numerai.retry import Budget, Clock, RetryPolicy, deadline_exceeded

Progress = Callable[[int, int | None], None]
"""Called with (bytes on disk, total bytes or None when the server sent no length)."""

log = logging.getLogger(__name__)
_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)")


class _UrlRefused(Exception):
    """The presigned URL answered 401/403: most likely it expired."""


@dataclass(slots=True)
class _State:
    url: str
    etag: str | None = None


def part_path(dest: Path) -> Path:
    """The temporary file a download of ``dest`` writes to."""
    return dest.with_name(dest.name + ".part")


async def download_file(
    http: httpx.AsyncClient,
    get_url: Callable[[float | None], Awaitable[str]],
    dest: Path,
    *,
    name: str,
    policy: RetryPolicy,
    deadline: float | None,
    timeout: float,
    progress: Progress | None = None,
    clock: Clock | None = None,
) -> DownloadResult:
    """Downloads what ``get_url(deadline)`` points at into ``dest``.

    ``get_url`` is asked once more if the URL is refused (presigned URLs expire), and
    again only after the fresh URL delivered bytes. Transient
    failures are retried within the policy window, which restarts whenever bytes arrived,
    so a slow but progressing download of a large file is not cut off by ``deadline_s``;
    the absolute ``deadline`` always holds.
    """
    clock = clock or Clock()
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    budget = Budget(policy, deadline, clock)
    state = _State(url=await get_url(budget.wall_deadline()))
    refreshed = False
    last: TransientError | None = None
    tries = 0
    on_disk = _size(part)
    while True:
        if budget.remaining() <= 0:
            raise deadline_exceeded(f"download of {name}", tries, last)
        try:
            size = await _attempt(http, state, part, name, timeout, budget, progress)
        except _UrlRefused as exc:
            if refreshed:
                raise NumeraiError(
                    f"download of {name}: the file URL was refused ({exc}) even after asking "
                    "Numerai for a fresh one; check the file name and round"
                ) from None
            refreshed = True
            log.info("download of %s: URL refused (%s), asking for a fresh one", name, exc)
            state = _State(url=await get_url(budget.wall_deadline()))
            continue
        except TransientError as exc:
            last = exc
        else:
            os.replace(part, dest)
            return DownloadResult(path=dest, size=size)
        now_on_disk = _size(part)
        if now_on_disk > on_disk:
            # Bytes arrived since the last failure: the link works, only drops; start over
            # with short waits and a fresh window. The URL worked too: should it expire
            # later in a long download, it may be refreshed again.
            tries = 0
            budget.restart()
            refreshed = False
        on_disk = now_on_disk
        tries += 1
        delay = policy.backoff(tries - 1, clock.rand)
        if last.retry_after is not None:
            delay = max(delay, last.retry_after)
        if not budget.retry_fits(delay):
            raise deadline_exceeded(f"download of {name}", tries, last)
        log.warning("%s; resuming at byte %d in %.2fs", last, on_disk, delay)
        await clock.sleep(delay)


async def _attempt(
    http: httpx.AsyncClient,
    state: _State,
    part: Path,
    name: str,
    timeout: float,
    budget: Budget,
    progress: Progress | None,
) -> int:
    """One GET; returns the final size once ``part`` holds the whole file."""
    offset = _size(part)
    # identity: Content-Length and Range must count the bytes we store.
    headers = {"Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if state.etag:
            # The server sends the whole file (200) instead if it changed meanwhile.
            headers["If-Range"] = state.etag
    what = f"download of {name} from {safe_url(state.url)}"
    try:
        async with asyncio.timeout(_cap(budget.hard_remaining())):
            async with http.stream(
                "GET", state.url, headers=headers, timeout=timeout, follow_redirects=True
            ) as resp:
                return await _receive(resp, state, part, offset, name, progress)
    except TimeoutError as exc:
        raise TransientError(f"{what}: the deadline cut the transfer short") from exc
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise translate_transport_error(exc, what) from exc


async def _receive(
    resp: httpx.Response,
    state: _State,
    part: Path,
    offset: int,
    name: str,
    progress: Progress | None,
) -> int:
    status = resp.status_code
    if status in (401, 403):
        raise _UrlRefused(f"HTTP {status}")
    if status == 404:
        raise NotFoundError("download", f"{name}: the file URL answered 404")
    if status == 416:
        total = _content_range(resp.headers.get("content-range"))[2]
        if total is not None and total == offset:
            return offset  # the .part file was already complete
        part.unlink(missing_ok=True)
        raise TransientError(f"download of {name}: partial file does not fit; restarting")
    if transient_status(status):
        raise TransientError(
            f"download of {name}: HTTP {status}", retry_after=retry_after_seconds(resp)
        )
    if status == 206:
        start, _, total = _content_range(resp.headers.get("content-range"))
        length = _int_header(resp, "content-length")
        if total is None and length is not None:
            total = offset + length
        if start != offset:
            part.unlink(missing_ok=True)
            raise TransientError(f"download of {name}: server resumed at the wrong offset")
        mode = "ab"
    elif status == 200:
        if offset:
            log.info("download of %s: server ignored the Range header; restarting", name)
        offset, mode = 0, "wb"
        total = _int_header(resp, "content-length")
    else:
        raise NumeraiError(f"download of {name}: unexpected HTTP {status}")
    state.etag = resp.headers.get("etag") or state.etag
    encoded = resp.headers.get("content-encoding", "identity").lower() != "identity"
    if encoded:
        total = None  # the length counts encoded bytes; nothing to compare against
    # No chunk_size: httpx would hold bytes back until a chunk fills, and lose them when
    # the connection drops; as they arrive, everything received is kept for resuming.
    chunks = resp.aiter_bytes() if encoded else resp.aiter_raw()
    done = offset
    with part.open(mode) as out:
        try:
            async for chunk in chunks:
                out.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
        finally:
            # Whatever arrived is kept for the next Range request.
            out.flush()
            os.fsync(out.fileno())
    if total is not None and done != total:
        if done > total:
            part.unlink(missing_ok=True)
        raise TransientError(f"download of {name}: got {done} of {total} bytes")
    return done


def _content_range(value: str | None) -> tuple[int | None, int | None, int | None]:
    """(start, end, total) of a Content-Range header; None where absent or '*'."""
    match = _CONTENT_RANGE.match(value or "")
    if match is None:
        return None, None, None
    start, end, total = match.groups()
    return (
        None if start is None else int(start),
        None if end is None else int(end),
        None if total in (None, "*") else int(total),
    )


def _int_header(resp: httpx.Response, header: str) -> int | None:
    try:
        return int(resp.headers[header])
    except (KeyError, ValueError):
        return None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _cap(seconds: float) -> float | None:
    return None if seconds == float("inf") else max(seconds, 0.0)
