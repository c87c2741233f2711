"""Round data: one download per (round, data version), verified, cached as Arrow, evicted."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from pyarrow import feather

from numerai_autopilot.numerai import NumeraiClient
from numerai_autopilot.runs.rounddata import RoundData, RoundDataError
from numerai_autopilot.sandbox.testing import RunningSandbox


def live_downloads(sandbox: RunningSandbox) -> list[dict[str, object]]:
    return [d for d in sandbox.downloads() if str(d["filename"]).endswith("v5.3/live.parquet")]


async def test_many_waiters_share_one_download_and_get_an_arrow_file(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    tmp_path = tmp_path / "cache"  # the sandbox keeps its own files beside it
    sandbox.set_faults(bandwidth_bytes_per_s=200_000)  # slow enough for the waiters to overlap
    round_number = sandbox.state()["current_rounds"]["8"]["number"]
    async with httpx.AsyncClient() as http:
        data = RoundData(NumeraiClient(http, sandbox.url), tmp_path)
        results = await asyncio.gather(*(
            data.get(tournament=8, round_number=round_number, data_version="v5.3", benchmarks=True)
            for _ in range(10)
        ))
    assert len({r.live_path for r in results}) == 1
    assert len(live_downloads(sandbox)) == 1 and data.downloads == 2  # live + benchmarks
    table = feather.read_table(results[0].live_path, memory_map=True)
    assert table.num_rows == 500 and "era" in table.column_names
    assert not list(tmp_path.rglob("*.parquet"))  # the parquet is not kept twice
    # Cached: asking again downloads nothing.
    async with httpx.AsyncClient() as http:
        again = RoundData(NumeraiClient(http, sandbox.url), tmp_path)
        await again.get(tournament=8, round_number=round_number, data_version="v5.3")
    assert again.downloads == 0 and len(live_downloads(sandbox)) == 1


async def test_old_rounds_are_evicted(sandbox: RunningSandbox, tmp_path: Path) -> None:
    tmp_path = tmp_path / "cache"
    async with httpx.AsyncClient() as http:
        data = RoundData(NumeraiClient(http, sandbox.url), tmp_path, keep_rounds=2)
        numbers = []
        for _ in range(3):
            numbers.append(sandbox.open_round()["number"])
            await data.get(tournament=8, round_number=numbers[-1], data_version="v5.3")
    kept = sorted(int(p.name) for p in (tmp_path / "8" / "v5.3").iterdir())
    assert kept == numbers[-2:]


async def test_a_failed_download_is_not_cached_and_every_waiter_sees_the_error(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    tmp_path = tmp_path / "cache"  # the sandbox keeps its own files beside it
    async with httpx.AsyncClient() as http:
        data = RoundData(NumeraiClient(http, sandbox.url), tmp_path)
        results = await asyncio.gather(
            *(data.get(tournament=8, round_number=999_999, data_version="v5.3") for _ in range(3)),
            return_exceptions=True,
        )
    assert all(isinstance(r, Exception) for r in results)
    assert not list(tmp_path.rglob("*.arrow"))


def test_a_file_that_is_not_parquet_is_refused(tmp_path: Path) -> None:
    from numerai_autopilot.runs.rounddata import _convert

    bad = tmp_path / "live.parquet"
    bad.write_bytes(b"this is not parquet")
    with pytest.raises(RoundDataError, match="not valid parquet"):
        _convert(bad, tmp_path / "live.arrow", "v5.3/live.parquet")
    assert not (tmp_path / "live.arrow").exists()
