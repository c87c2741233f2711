"""Round data: each live file downloaded once per (tournament, round, data version).

However many runs ask at once, one download happens (single flight); the parquet file is
verified, converted once to an uncompressed Arrow (Feather v2) file that Dask workers
memory-map, and cached on disk. Older rounds are evicted once `keep_rounds` newer ones exist.

    data = RoundData(client, Path(".autopilot/data"), keep_rounds=2)
    files = await data.get(tournament=8, round_number=512, data_version="v5.3", benchmarks=True)
    files.live_path  # .../8/v5.3/512/live.arrow
"""

from __future__ import annotations

import asyncio
import functools
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from numerai_autopilot.errors import AutopilotError
from numerai_autopilot.numerai import NumeraiClient

log = logging.getLogger(__name__)

# What each tournament's live files are called, relative to its data version folder.
LIVE_FILES: dict[int, str] = {8: "live.parquet", 11: "live.parquet", 12: "live_universe.parquet"}
BENCHMARK_FILES: dict[int, str] = {8: "live_benchmark_models.parquet"}
# Numerai's example model's live predictions (numerapi's list_datasets has
# "v5.x/live_example_preds.parquet"): what prediction health correlates each run with.
EXAMPLE_FILES: dict[int, str] = {8: "live_example_preds.parquet"}
VERSION_PREFIX: dict[int, str] = {8: "", 11: "signals/", 12: "crypto/"}


class RoundDataError(AutopilotError):
    """A round's data could not be fetched or is not usable."""


@dataclass(frozen=True)
class RoundFiles:
    """The Arrow files of one round's data, ready for workers to memory-map; `example_path`
    (the example model's live predictions) when asked for with `examples=True`."""

    live_path: Path
    benchmark_path: Path | None
    example_path: Path | None = None


Progress = Callable[[str, int, int | None], None]


class RoundData:
    """Downloads, verifies, converts and caches round data; see the module docstring."""

    def __init__(
        self,
        client: NumeraiClient,
        cache_dir: Path,
        *,
        keep_rounds: int = 2,
        progress: Progress | None = None,
    ) -> None:
        self._client = client
        self._cache_dir = cache_dir
        self._keep_rounds = keep_rounds
        self._progress = progress
        self._inflight: dict[Path, asyncio.Future[None]] = {}
        self.downloads = 0  # files actually fetched from Numerai by this process
        self.bytes_downloaded = 0

    def files(self, *, tournament: int, round_number: int, data_version: str,
              benchmarks: bool = False, examples: bool = False) -> RoundFiles:
        """Where `get` puts these files (they may not be there yet)."""
        folder = self._cache_dir / str(tournament) / data_version / str(round_number)
        bench_name = BENCHMARK_FILES.get(tournament) if benchmarks else None
        example_name = EXAMPLE_FILES.get(tournament) if examples else None
        return RoundFiles(
            folder / _arrow(LIVE_FILES.get(tournament, "live.parquet")),
            folder / _arrow(bench_name) if bench_name else None,
            folder / _arrow(example_name) if example_name else None)

    async def get(
        self,
        *,
        tournament: int,
        round_number: int,
        data_version: str,
        benchmarks: bool = False,
        examples: bool = False,
        deadline: float | None = None,
    ) -> RoundFiles:
        """The round's files, downloaded and converted unless they are on disk already;
        RoundDataError (or the client's NumeraiError) when they cannot be had."""
        files = self.files(tournament=tournament, round_number=round_number,
                           data_version=data_version, benchmarks=benchmarks, examples=examples)
        prefix = f"{VERSION_PREFIX.get(tournament, '')}{data_version}/"
        # all files at once: one's API round trips overlap another's transfer
        await asyncio.gather(*(
            self._fetch(prefix + path.with_suffix(".parquet").name, path, tournament,
                        round_number, deadline)
            for path in (files.live_path, files.benchmark_path, files.example_path) if path))
        self._evict(files.live_path.parent.parent)
        return files

    async def _fetch(
        self, filename: str, arrow: Path, tournament: int, round_number: int, deadline: float | None
    ) -> None:
        if arrow.exists():
            return
        pending = self._inflight.get(arrow)
        if pending is not None:
            await asyncio.shield(pending)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._inflight[arrow] = future
        try:
            await self._download_and_convert(filename, arrow, tournament, round_number, deadline)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters, if any, re-raise it themselves
            raise
        else:
            future.set_result(None)
        finally:
            del self._inflight[arrow]

    async def _download_and_convert(
        self, filename: str, arrow: Path, tournament: int, round_number: int, deadline: float | None
    ) -> None:
        arrow.parent.mkdir(parents=True, exist_ok=True)
        parquet = arrow.with_suffix(".parquet")
        log.info("downloading %s for round %s", filename, round_number)
        progress = functools.partial(self._progress, filename) if self._progress else None
        result = await self._client.download(
            filename, parquet, tournament=tournament, round=round_number, progress=progress,
            deadline=deadline,
        )
        self.downloads += 1
        self.bytes_downloaded += result.size
        await asyncio.to_thread(_convert, parquet, arrow, filename)
        parquet.unlink(missing_ok=True)

    def _evict(self, version_dir: Path) -> None:
        rounds = sorted(
            (p for p in version_dir.iterdir() if p.is_dir() and p.name.isdigit()),
            key=lambda p: int(p.name),
        )
        for old in rounds[: -self._keep_rounds]:
            if not any(str(path).startswith(str(old)) for path in self._inflight):
                log.info("evicting cached round data %s", old)
                shutil.rmtree(old, ignore_errors=True)


def _arrow(parquet_name: str) -> str:
    return parquet_name.replace(".parquet", ".arrow")


def warm_up() -> None:
    """Import what converting a round file needs (pyarrow's dataset module and pandas), at
    start-up beside the executor's start: on the event loop's thread in the first round, the
    imports would hold the GIL between its download and its predictions."""
    import pyarrow.parquet  # noqa: F401
    from pyarrow import dataset, feather  # noqa: F401


def _convert(parquet: Path, arrow: Path, filename: str) -> None:
    """Verify a downloaded parquet file and rewrite it as uncompressed Arrow, atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyarrow import feather

    try:
        table = pq.read_table(parquet)
    except (pa.ArrowException, OSError) as exc:
        parquet.unlink(missing_ok=True)
        raise RoundDataError(f"{filename}: downloaded file is not valid parquet ({exc})") from exc
    if table.num_rows == 0:
        raise RoundDataError(f"{filename}: downloaded file has no rows")
    partial = arrow.with_suffix(".arrow.partial")
    feather.write_feather(table, partial, compression="uncompressed")
    partial.replace(arrow)
