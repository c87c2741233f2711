"""Streamed, atomic, resumable downloads: from the sandbox, and from a file server that
ignores Range (as some proxies do), both over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from numerai_helpers import FAST_RETRY, SHORT_RETRY
from starlette.types import Receive, Scope, Send

from numerai_autopilot.numerai import (
    DeadlineExceeded,
    NotFoundError,
    NumeraiClient,
    NumeraiError,
)
from numerai_autopilot.numerai.download import download_file, part_path
from numerai_autopilot.sandbox.testing import RunningSandbox, serve_asgi

LIVE = "v5.3/live.parquet"


def original(sandbox: RunningSandbox, filename: str = LIVE) -> bytes:
    return sandbox.sandbox.data.path(filename, sandbox.settings.start_round).read_bytes()


async def test_download(client: NumeraiClient, sandbox: RunningSandbox, tmp_path: Path) -> None:
    seen: list[tuple[int, int | None]] = []
    dest = tmp_path / "round" / "live.parquet"
    result = await client.download(
        LIVE, dest, progress=lambda done, total: seen.append((done, total))
    )
    expected = original(sandbox)
    assert result.path == dest and result.size == len(expected)
    assert dest.read_bytes() == expected
    assert not part_path(dest).exists()
    assert seen[-1] == (len(expected), len(expected))
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    (record,) = sandbox.downloads()
    assert record["completed"]


async def test_download_of_a_static_file(
    client: NumeraiClient, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    result = await client.download("v5.3/features.json", tmp_path / "features.json")
    assert result.path.read_bytes() == original(sandbox, "v5.3/features.json")


async def test_download_replaces_an_old_file(
    client: NumeraiClient, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    dest = tmp_path / "live.parquet"
    dest.write_bytes(b"old")
    await client.download(LIVE, dest)
    assert dest.read_bytes() == original(sandbox)


async def test_download_resumes_across_cut_connections(
    client: NumeraiClient, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    expected = original(sandbox)
    cut = len(expected) // 3 + 1
    sandbox.set_faults(cut_download_after_bytes=cut)
    dest = tmp_path / "live.parquet"
    result = await client.download(LIVE, dest)
    assert dest.read_bytes() == expected and result.size == len(expected)
    records = sandbox.downloads()
    assert [r["range_start"] for r in records] == [0, cut, 2 * cut]
    assert [r["status_code"] for r in records] == [200, 206, 206]


async def test_a_redirected_download_completes(
    client: NumeraiClient, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    sandbox.set_faults(operations={"download": {"redirects": 3, "redirect_status": 302}})
    dest = tmp_path / "live.parquet"
    await client.download(LIVE, dest)
    assert dest.read_bytes() == original(sandbox)
    (record,) = sandbox.downloads()  # the file was served once, at the end of the chain
    assert record["completed"]
    assert [f["kind"] for f in sandbox.sandbox.faults.view()["injected"]] == ["redirect"]


async def test_a_redirected_download_resumes_through_the_redirects(
    client: NumeraiClient, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    expected = original(sandbox)
    cut = len(expected) // 2 + 1
    sandbox.set_faults(cut_download_after_bytes=cut,
                       operations={"download": {"redirects": 2}})
    dest = tmp_path / "live.parquet"
    await client.download(LIVE, dest)
    assert dest.read_bytes() == expected
    records = sandbox.downloads()
    assert [(r["range_start"], r["status_code"]) for r in records] == [(0, 200), (cut, 206)]


async def test_endless_redirects_are_refused(
    client: NumeraiClient, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    # More than httpx's default max_redirects (20), which bounds how many are followed.
    sandbox.set_faults(operations={"download": {"redirects": 25}})
    with pytest.raises(NumeraiError, match="too many redirects") as info:
        await client.download(LIVE, tmp_path / "live.parquet")
    assert not isinstance(info.value, DeadlineExceeded)
    assert sandbox.downloads() == []


async def test_download_continues_a_part_file_left_by_an_earlier_process(
    client: NumeraiClient, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    expected = original(sandbox)
    dest = tmp_path / "live.parquet"
    part_path(dest).write_bytes(expected[:1000])
    await client.download(LIVE, dest)
    assert dest.read_bytes() == expected
    (record,) = sandbox.downloads()
    assert record["range_start"] == 1000


async def test_a_part_file_that_does_not_fit_is_discarded(
    client: NumeraiClient, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    expected = original(sandbox)
    dest = tmp_path / "live.parquet"
    part_path(dest).write_bytes(b"x" * (len(expected) + 10))  # longer than the file: 416
    await client.download(LIVE, dest)
    assert dest.read_bytes() == expected


async def test_unknown_file_is_not_found(client: NumeraiClient, tmp_path: Path) -> None:
    dest = tmp_path / "nope.parquet"
    with pytest.raises(NotFoundError):
        await client.download("v5.3/nope.parquet", dest)
    assert not dest.exists() and not part_path(dest).exists()


async def test_download_faults_on_the_file_server_are_retried(
    client: NumeraiClient, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    sandbox.set_faults(operations={"download": {"error_rate": 1.0, "times": 2}})
    dest = tmp_path / "live.parquet"
    await client.download(LIVE, dest)
    assert dest.read_bytes() == original(sandbox)


async def test_download_stops_at_the_deadline_and_resumes_later(
    client: NumeraiClient, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    expected = original(sandbox)
    sandbox.set_faults(bandwidth_bytes_per_s=max(len(expected) // 4, 2048))
    dest = tmp_path / "live.parquet"
    with pytest.raises(DeadlineExceeded):
        await client.download(LIVE, dest, deadline=time.time() + 1.0)
    kept = part_path(dest).stat().st_size
    assert 0 < kept < len(expected)
    assert not dest.exists()
    sandbox.clear_faults()
    await client.download(LIVE, dest)
    assert dest.read_bytes() == expected
    assert sandbox.downloads()[-1]["range_start"] == kept


async def test_expired_url_is_asked_for_again(
    sandbox: RunningSandbox, client: NumeraiClient, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    fresh = await client.dataset_url(LIVE)
    path = httpx.URL(fresh).path
    expired = sandbox.sandbox.signer.sign(sandbox.url, "GET", path, ttl_s=-60)
    urls = [expired, fresh]
    asked: list[float | None] = []

    async def get_url(deadline: float | None) -> str:
        asked.append(deadline)
        return urls[len(asked) - 1]

    dest = tmp_path / "live.parquet"
    await download_file(
        http, get_url, dest, name=LIVE, policy=FAST_RETRY, deadline=None, timeout=10
    )
    assert len(asked) == 2
    assert dest.read_bytes() == original(sandbox)


async def test_url_refused_twice_gives_up(
    sandbox: RunningSandbox, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    expired = sandbox.sandbox.signer.sign(
        sandbox.url, "GET", f"/files/8/{sandbox.settings.start_round}/{LIVE}", ttl_s=-60
    )
    asked = 0

    async def get_url(deadline: float | None) -> str:
        nonlocal asked
        asked += 1
        return expired

    with pytest.raises(NumeraiError, match="even after asking") as info:
        await download_file(
            http, get_url, tmp_path / "x", name=LIVE, policy=FAST_RETRY, deadline=None, timeout=10
        )
    assert asked == 2
    assert "signature=" not in str(info.value)


# -- a file server that ignores Range ----------------------------------------------------

BODY = bytes(range(256)) * 400  # 102,400 bytes


class IgnoresRange:
    """Answers every GET with the whole file (200); the first answer is cut midway."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.requests.append(headers)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(BODY)).encode())],
            }
        )
        if len(self.requests) == 1:
            await send({"type": "http.response.body", "body": BODY[:30_000], "more_body": True})
            # uvicorn's send is a method of its protocol object: close its socket mid-body.
            send.__self__.transport.close()  # type: ignore[attr-defined]
            for _ in range(3):  # let uvicorn see the disconnect before the app returns
                await asyncio.sleep(0)
            return
        await send({"type": "http.response.body", "body": BODY})


@pytest.fixture
def ignores_range() -> Iterator[tuple[str, IgnoresRange]]:
    app = IgnoresRange()
    with serve_asgi(app) as url:
        yield url, app


async def test_server_ignoring_range_restarts_cleanly(
    ignores_range: tuple[str, IgnoresRange], http: httpx.AsyncClient, tmp_path: Path
) -> None:
    url, app = ignores_range

    async def get_url(deadline: float | None) -> str:
        return url + "/file.bin"

    dest = tmp_path / "file.bin"
    result = await download_file(
        http, get_url, dest, name="file.bin", policy=FAST_RETRY, deadline=None, timeout=10
    )
    assert len(app.requests) == 2
    assert app.requests[1]["range"] == "bytes=30000-"  # it asked to resume, got 200...
    assert dest.read_bytes() == BODY and result.size == len(BODY)  # ...and restarted cleanly


async def test_download_gives_up_when_the_server_stays_broken(
    sandbox: RunningSandbox, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    sandbox.set_faults(operations={"download": {"drop_rate": 1.0}})
    client = NumeraiClient(http, sandbox.url, retry=SHORT_RETRY)
    with pytest.raises(DeadlineExceeded):
        await client.download(LIVE, tmp_path / "live.parquet")
