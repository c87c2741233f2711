"""Prediction health: the figures of one validated submission, against its round's data.

    frame = round_frame(files.live_path, files.benchmark_path, files.example_path, tournament=8)
    figures(csv_bytes, frame)
    # {"rows": 6720, "mean": 0.5, "std": 0.288, "q10": ..., "q50": ..., "q90": ...,
    #  "corr_v53_lgbm_ender20": 0.71, "corr_example": 0.64, "exposure": 0.12}

Classic: the distribution (rows, mean, standard deviation, 10/50/90% quantiles), the
Spearman correlation with each live benchmark model (`corr_<column>`) and with the example
model's predictions (`corr_example`), and the feature exposure: the largest absolute Pearson
correlation of the predictions' ranks with any one feature (a missing feature value counts
as that feature's mean). Signals and Crypto: the distribution and `coverage`, the fraction of
the live universe's tickers the submission covers.

`round_frame` does once per round what every model's figures share (the features in one
matrix, each one's centred norm, the references' centred unit-norm ranks), so `figures` is
a hash lookup of the submission's ids and a few dot products. `cached_frame` keeps the
latest rounds' frames of this process: the server's, and each worker's (where the figures
are computed beside validation, off the server's event loop). Ranks are average ranks (ties share theirs), as
`scipy.stats.spearmanr` has them.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

EXAMPLE = "example"
QUANTILES = (("q10", 0.1), ("q50", 0.5), ("q90", 0.9))
# The universe's ticker columns per tournament: the live file's key first.
_TICKER_COLUMNS: dict[int, tuple[str, ...]] = {
    11: ("numerai_ticker", "bloomberg_ticker", "composite_figi", "sedol", "ticker"),
    12: ("symbol",),
}


@dataclass(frozen=True)
class RoundFrame:
    """What every model's figures of one round share; built by `round_frame`.

    Classic: `ids` (the live ids in live order, an Arrow string array), the `features`
    (features x rows, live order: int8 as Numerai ships them, else float32 centred with
    a missing value at the feature's mean), each feature's centred `norms` (float64) and
    the `references` (name -> centred, unit-norm ranks in live order; benchmark columns
    by their name, the example predictions as "example"). Signals and Crypto: `universe`,
    each ticker column of the live file -> its tickers.
    """

    ids: Any = None
    features: Any = None
    norms: Any = None
    references: dict[str, Any] = field(default_factory=dict)
    universe: dict[str, Any] = field(default_factory=dict)


_FRAMES_KEPT = 2  # the latest rounds' (a round's Classic and Signals files are two)
_frames: OrderedDict[tuple[Any, ...], RoundFrame] = OrderedDict()
_frames_lock = threading.Lock()  # one build per round, whichever caller asks first
_ahead: set[tuple[Any, ...]] = set()  # frames `build_ahead` is building
_ahead_lock = threading.Lock()


def round_frame(live_path: Path, benchmark_path: Path | None, example_path: Path | None,
                tournament: int) -> RoundFrame:
    """Read the round's Arrow files and precompute what `figures` needs (see RoundFrame)."""
    from pyarrow import feather

    live = feather.read_table(live_path, memory_map=True)
    if tournament in _TICKER_COLUMNS:
        return RoundFrame(universe={
            column: np.unique(np.asarray(live.column(column).to_pylist(), dtype=str))
            for column in _TICKER_COLUMNS[tournament] if column in live.column_names})
    ids = _strings(live.column("id" if "id" in live.column_names else live.column_names[-1]))
    names = [c for c in live.column_names if c.startswith("feature_")]
    features, norms = _features([live.column(name) for name in names], live.num_rows)
    references: dict[str, Any] = {}
    for path, rename in ((benchmark_path, None), (example_path, EXAMPLE)):
        if path is None:
            continue
        table = feather.read_table(path, memory_map=True)
        key = "id" if "id" in table.column_names else table.column_names[-1]
        rows = _rows(ids, table.column(key))
        for column in table.column_names:
            if column == key:
                continue
            values = np.full(len(ids), np.nan)
            found = rows >= 0
            values[rows[found]] = table.column(column).to_numpy(zero_copy_only=False)[found]
            references[rename or column] = _unit(_ranks(values))
    return RoundFrame(ids=ids, features=features, norms=norms, references=references)


def cached_frame(live_path: Path, benchmark_path: Path | None, example_path: Path | None,
                 tournament: int) -> RoundFrame:
    """`round_frame`, built once per round file (path and modification time) in this
    process; the latest `_FRAMES_KEPT` are kept. Blocks while another thread builds it."""
    key = _frame_key(live_path, benchmark_path, example_path, tournament)
    with _frames_lock:
        frame = _frames.get(key)
        if frame is None:
            frame = round_frame(live_path, benchmark_path, example_path, tournament)
            _frames[key] = frame
            while len(_frames) > _FRAMES_KEPT:
                _frames.popitem(last=False)
        _frames.move_to_end(key)
        return frame


def build_ahead(live_path: Path, benchmark_path: Path | None, example_path: Path | None,
                tournament: int) -> None:
    """Start `cached_frame` in a thread of its own unless that frame is built or being
    built, so that it is ready when the first submission of the round is. Never raises: a
    build that fails here is tried again (and its error raised) by `cached_frame`."""
    key = _frame_key(live_path, benchmark_path, example_path, tournament)
    with _ahead_lock:
        if key in _frames or key in _ahead:
            return
        _ahead.add(key)

    def build() -> None:
        try:
            cached_frame(live_path, benchmark_path, example_path, tournament)
        except Exception:  # noqa: BLE001, S110  the figures' own call raises it
            pass
        finally:
            with _ahead_lock:
                _ahead.discard(key)

    threading.Thread(target=build, name="autopilot-health-frame", daemon=True).start()


def _frame_key(live_path: Path, benchmark_path: Path | None, example_path: Path | None,
               tournament: int) -> tuple[Any, ...]:
    return live_path, live_path.stat().st_mtime_ns, benchmark_path, example_path, tournament


def figures(csv: bytes, frame: RoundFrame) -> dict[str, float]:
    """The figures of one validated submission CSV (key column, value column) of the round
    of `frame`; see the module docstring."""
    from pyarrow import csv as pa_csv

    table = pa_csv.read_csv(io.BytesIO(csv))
    values = table.column(1).to_numpy(zero_copy_only=False).astype(np.float64)
    out = {"rows": float(len(values)), "mean": float(values.mean()), "std": float(values.std())}
    for name, q in QUANTILES:
        out[name] = float(np.quantile(values, q))
    if frame.universe:
        column = str(table.column_names[0])
        universe = frame.universe.get(column, next(iter(frame.universe.values())))
        keys = np.asarray(table.column(0).cast("string").to_pylist(), dtype=str)
        covered = np.isin(universe, keys).sum() if len(universe) else 0
        out["coverage"] = float(covered / len(universe)) if len(universe) else 0.0
        return {name: value for name, value in out.items() if np.isfinite(value)}
    rows = _rows(frame.ids, table.column(0))
    live = np.full(len(frame.ids), np.nan)
    live[rows[rows >= 0]] = values[rows >= 0]
    ranks = _unit(_ranks(live))
    for name, reference in frame.references.items():
        out[f"corr_{name}" if name != EXAMPLE else "corr_example"] = float(reference @ ranks)
    if len(frame.features):
        # with `ranks` centred, a feature's own centring changes nothing in its product;
        # BLAS at the process's own thread count (a worker's is 1)
        ranks32 = ranks.astype(np.float32)
        products = np.concatenate([block @ ranks32 for block in _blocks(frame.features)])
        exposures = np.divide(products, frame.norms, out=np.zeros(len(products)),
                              where=frame.norms > 0)
        out["exposure"] = float(np.abs(exposures).max())
    return {name: value for name, value in out.items() if np.isfinite(value)}  # JSON-safe


def _strings(column: Any) -> Any:
    """An Arrow column as one string array (ids may be stored as another type)."""
    import pyarrow as pa

    return column.cast(pa.string()).combine_chunks()


def _rows(ids: Any, keys: Any) -> Any:
    """The live row (index into `ids`) of each of `keys`, an Arrow column; -1 where a key is
    not a live id."""
    import pyarrow.compute as pc

    return pc.index_in(_strings(keys), value_set=ids).fill_null(-1).to_numpy(
        zero_copy_only=False)


def _ranks(values: Any) -> Any:
    """Average ranks (1..n) of `values`; NaN where a value is missing."""
    out = np.full(len(values), np.nan)
    present = ~np.isnan(values)
    _, inverse, counts = np.unique(values[present], return_inverse=True, return_counts=True)
    starts = np.cumsum(counts) - counts
    out[present] = (starts + (counts + 1) / 2.0)[inverse]
    return out


def _unit(values: Any) -> Any:
    """`values` centred (a missing value counts as the mean) and scaled to unit norm; all
    zeros when constant."""
    centred = np.nan_to_num(values - np.nanmean(values)) if len(values) else values
    norm = float(np.sqrt((centred * centred).sum()))
    return centred / norm if norm > 0 else centred


def _features(columns: list[Any], rows: int) -> tuple[Any, Any]:
    """The feature columns as one (features x rows) matrix, and each feature's centred
    norm. Integer columns without missing values stay int8 (a quarter of float32's memory,
    no centring pass: `figures` centres nothing but the predictions); any other kind is
    float32, centred, a missing value at its feature's mean (centred: 0)."""
    import pyarrow as pa

    small = all(pa.types.is_int8(c.type) and c.null_count == 0 for c in columns)
    features = np.empty((len(columns), rows), dtype=np.int8 if small else np.float32)
    for i, column in enumerate(columns):
        features[i] = column.to_numpy(zero_copy_only=False)
    if small:  # exact in integers: sum((x - mean)^2) = sum(x^2) - sum(x)^2 / n
        sums = np.zeros(len(columns))
        squares = np.zeros(len(columns))
        for at, block in zip(range(0, len(columns), _BLOCK), _blocks(features), strict=True):
            sums[at:at + len(block)] = block.sum(axis=1, dtype=np.float64)
            squares[at:at + len(block)] = np.einsum("ij,ij->i", block, block,
                                                    dtype=np.float64)
        return features, np.sqrt(np.maximum(squares - sums * sums / max(rows, 1), 0))
    missing = np.isnan(features)
    present = rows - missing.sum(axis=1) if missing.any() else None
    if present is not None:
        features[missing] = 0
    sums = features.sum(axis=1, dtype=np.float64)
    means = sums / np.maximum(present, 1) if present is not None else sums / max(rows, 1)
    features -= means.astype(np.float32)[:, None]
    if present is not None:
        features[missing] = 0
    return features, np.sqrt(np.einsum("ij,ij->i", features, features, dtype=np.float64))


# Features turned into float32 at a time (6,700 rows: 7 MB): no whole float copy of an
# int8 matrix per model.
_BLOCK = 256


def _blocks(features: Any) -> Any:
    """`features` (int8 or float32) as float32 blocks of `_BLOCK` rows, one buffer reused
    (each block is valid until the next is yielded)."""
    if features.dtype == np.float32:
        yield features
        return
    buffer = np.empty((min(_BLOCK, len(features)), features.shape[1]), dtype=np.float32)
    for start in range(0, len(features), _BLOCK):
        block = buffer[:len(features[start:start + _BLOCK])]
        np.copyto(block, features[start:start + _BLOCK], casting="unsafe")
        yield block
