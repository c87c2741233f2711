"""The round's files inside a Dask worker: scattered bytes written to disk once, and each
file's frame read once per process and shared by its tasks.

Runs in workers only (`worker_side.run_prediction` opens a task's files here).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

_KEEP_ROUND_FILES = 4
# Frames kept per process: a round's live file and its benchmark models; an older round's
# frame is opened again if ever asked for.
_KEEP_FRAMES = 2
_lock = threading.Lock()


_materialised: dict[str, int] = {}


def transfer_stats() -> dict[str, int]:
    """Per scattered round file (token): how many times this worker wrote it to disk."""
    with _lock:
        return dict(_materialised)


def _materialise(worker: Any, blob: bytes, token: str) -> Path:
    """Write scattered round-file bytes to this worker's local directory once."""
    folder = Path(worker.local_directory) / "autopilot-rounds"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{token}.arrow"
    if not path.exists():
        tmp = folder / f".{token}.{os.getpid()}.{threading.get_ident()}.tmp"
        tmp.write_bytes(blob)
        os.replace(tmp, path)
        with _lock:
            _materialised[token] = _materialised.get(token, 0) + 1
        files = sorted(folder.glob("*.arrow"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in files[_KEEP_ROUND_FILES:]:
            old.unlink(missing_ok=True)  # mapped elsewhere? the mapping outlives the name
    return path


def open_frame(path: Path) -> pd.DataFrame:
    """Memory-map an Arrow IPC file into a frame indexed by its key.

    The key: ``id`` (Classic), ``numerai_ticker`` (Signals) or ``symbol`` (Crypto).

    The columns are consolidated into one block per dtype (the features: one int8 matrix),
    read once from the mapped pages into this process. One block per Arrow column would
    share the mapped pages instead, but every frame operation (a task's shallow copy, a
    predictor's ``live[features].to_numpy()``) would then loop over thousands of blocks.

    Built without Arrow's threads (a worker runs one task thread, and Arrow's pool would
    compete with the other workers) and, when the pandas metadata holds nothing the frame
    needs, without reading it back (an entry per column): the key becomes the index below
    either way.
    """
    from pyarrow import feather

    table = feather.read_table(path, memory_map=True)
    meta = table.schema.pandas_metadata or {}
    if all(_rebuilt_alike(index) for index in meta.get("index_columns", [])):
        table = table.replace_schema_metadata(None)
    frame = table.to_pandas(use_threads=False)
    del table
    key = next((k for k in _FRAME_KEYS if k in frame.columns), None)
    if key is not None:
        frame = frame.set_index(key)
    return frame


_FRAME_KEYS = ("id", "numerai_ticker", "symbol")
_frames: OrderedDict[str, pd.DataFrame] = OrderedDict()


def _rebuilt_alike(index: object) -> bool:
    """An index of the pandas metadata that comes back the same without it: our key (set as
    the index from its column) or a plain 0, 1, 2 ... (the default)."""
    if isinstance(index, dict):
        return (index.get("kind") == "range" and index.get("name") is None
                and index.get("start") == 0 and index.get("step") == 1)
    return index in _FRAME_KEYS


def round_frame(path: Path) -> pd.DataFrame:
    """The round file's frame for one predictor: a shallow copy of a per-process cache.

    The file is read once per process, not once per predictor, and copy-on-write makes the
    sharing safe: a predictor that writes into its frame gets its own copy of the block it
    writes to and never changes what the next predictor sees.
    """
    st = path.stat()
    key = f"{path}:{st.st_mtime_ns}:{st.st_size}"
    with _lock:
        frame = _frames.get(key)
        if frame is None:
            frame = open_frame(path)
            _frames[key] = frame
            while len(_frames) > _KEEP_FRAMES:
                _frames.popitem(last=False)
        _frames.move_to_end(key)
        return frame.copy(deep=False)


def round_path(worker: Any, path: str | None, blob: bytes | None, token: str) -> Path:
    """Where a task opens a round file: its path (shared storage), or the scattered
    bytes written to this worker's directory once (`token` names them)."""
    if blob is not None:
        return _materialise(worker, blob, token)
    assert path is not None
    return Path(path)
