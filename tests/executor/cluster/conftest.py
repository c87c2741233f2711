"""Fixtures for the cluster tests: a real `dask scheduler` and two `dask worker` processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster_harness import DaskProcesses


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[DaskProcesses]:
    """Scheduler and two workers on 127.0.0.1, stopped after the test."""
    processes = DaskProcesses(tmp_path / "cluster", workers=2)
    try:
        yield processes
    finally:
        processes.stop()
