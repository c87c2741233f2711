"""A round file opens on a worker as the frame pandas would rebuild from it, faster."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from pyarrow import feather

from numerai_autopilot.executor.worker_files import open_frame


def _as_pandas_rebuilds_it(path: Path) -> pd.DataFrame:
    frame = feather.read_table(path).to_pandas()
    key = next((k for k in ("id", "numerai_ticker", "symbol") if k in frame.columns), None)
    return frame.set_index(key) if key else frame


def _write(frame: pd.DataFrame, path: Path, preserve_index: bool | None = None) -> Path:
    feather.write_feather(pa.Table.from_pandas(frame, preserve_index=preserve_index), path,
                          compression="uncompressed")
    return path


def _classic(rows: int = 50) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    features = {f"feature_{i}": rng.integers(0, 5, rows, dtype=np.int8) for i in range(30)}
    return pd.DataFrame({"era": ["X"] * rows, **features, "target": np.nan},
                        index=pd.Index([f"n{i:05d}" for i in range(rows)], name="id"))


@pytest.mark.parametrize("layout", ["id as the stored index", "id as a column",
                                    "ticker as a column"])
def test_the_frame_is_the_one_pandas_rebuilds(tmp_path: Path, layout: str) -> None:
    frame = _classic()
    if layout == "id as a column":
        frame = frame.reset_index()
    elif layout == "ticker as a column":
        frame = frame.reset_index().rename(columns={"id": "numerai_ticker"})
    path = _write(frame, tmp_path / "live.arrow")
    opened, expected = open_frame(path), _as_pandas_rebuilds_it(path)
    pd.testing.assert_frame_equal(opened, expected)
    assert opened.index.name in ("id", "numerai_ticker")
    assert opened["feature_0"].dtype == np.int8


@pytest.mark.parametrize("index", [pd.RangeIndex(5, 55, name=None),
                                   pd.Index([f"t{i}" for i in range(50)]),
                                   pd.Index(range(50), name="row")])
def test_an_index_only_the_metadata_knows_is_kept(tmp_path: Path, index: pd.Index) -> None:
    frame = _classic().reset_index(drop=True).set_axis(index)
    path = _write(frame, tmp_path / "live.arrow", preserve_index=True)
    opened = open_frame(path)
    pd.testing.assert_frame_equal(opened, _as_pandas_rebuilds_it(path))
    assert list(opened.index) == list(index) and opened.index.name == index.name
