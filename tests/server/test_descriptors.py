"""The server grows its descriptor table at start, while it has one thread: a first burst's
accepts never wait for the table to grow (`server/descriptors.py`)."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from server_harness import make_config, predictor, sandbox_env
from server_process import ServerProcess

from numerai_autopilot.sandbox.testing import RunningSandbox
from numerai_autopilot.server.descriptors import DEFAULT_DESCRIPTORS

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(),
                                reason="reads the table's size from Linux's /proc")

_REPORT = """
import json, os, resource, sys
from numerai_autopilot.server.descriptors import reserve_descriptors
def size():
    for line in open("/proc/self/status"):
        if line.startswith("FDSize:"):
            return int(line.split()[1])
def fds():
    return sorted(int(fd) for fd in os.listdir("/proc/self/fd"))
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
SETUP
before, open_before = size(), fds()
highest = reserve_descriptors()
print(json.dumps({"before": before, "after": size(), "highest": highest,
                  "open_before": open_before, "open_after": fds()}))
"""


def _run(setup: str = "") -> dict[str, object]:
    code = _REPORT.replace("SETUP", setup)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)
    return dict(json.loads(done.stdout))


def _room(soft_limit: int) -> int:
    """How many descriptors `reserve_descriptors` makes room for under this soft limit."""
    if soft_limit == resource.RLIM_INFINITY:
        return DEFAULT_DESCRIPTORS
    return min(DEFAULT_DESCRIPTORS, soft_limit)


def _soft_limit() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft


def test_the_table_grows_at_once_and_no_descriptor_stays_open() -> None:
    report = _run()
    room = _room(_soft_limit())
    assert report["highest"] == room - 1
    assert report["before"] < room <= report["after"]  # type: ignore[operator]
    assert report["open_after"] == report["open_before"]


def test_the_soft_limit_bounds_the_table() -> None:
    report = _run("resource.setrlimit(resource.RLIMIT_NOFILE, (300, hard))")
    assert report["highest"] == 299
    assert report["after"] >= 300  # type: ignore[operator]


def test_a_descriptor_open_at_the_top_is_left_alone() -> None:
    if _room(_soft_limit()) < 600:
        pytest.skip("needs a soft RLIMIT_NOFILE of 600 or more")
    setup = ("resource.setrlimit(resource.RLIMIT_NOFILE, (600, hard))\n"
             "r, w = os.pipe(); os.dup2(w, 599); os.write(599, b'still open')")
    report = _run(setup)
    assert report["highest"] == 0  # nothing to do: the table already holds 599
    assert 599 in report["open_after"]  # type: ignore[operator]


@pytest.fixture
def server(tmp_path: Path, sandbox: RunningSandbox) -> Iterator[ServerProcess]:
    make_config(tmp_path, sandbox, {"alpha": predictor("good")})
    started = ServerProcess(tmp_path / "autopilot.toml", sandbox_env(sandbox),
                            tmp_path / "server.log").ready()
    yield started
    started.stop()


def test_a_serving_process_has_room_for_a_burst(server: ServerProcess) -> None:
    status = Path(f"/proc/{server.pid}/status").read_text()
    size = next(int(line.split()[1]) for line in status.splitlines()
                if line.startswith("FDSize:"))
    soft, _ = psutil.Process(server.pid).rlimit(psutil.RLIMIT_NOFILE)
    room = _room(soft)
    assert size >= room, f"FDSize {size}: the table was not grown at start (room for {room})"
