"""Our server pointed at an external Dask cluster (`[executor] scheduler = ...`).

Real processes throughout: the sandbox over HTTP, `python -m numerai_autopilot serve`, a
`dask scheduler` and two `dask worker`s. Round data must reach each worker once per round
(scattered once, written once per worker), never once per task; a worker killed mid-round
costs only the run it was running.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from cluster_harness import ClusterServer, DaskProcesses, write_config

from numerai_autopilot.executor.worker_files import transfer_stats
from numerai_autopilot.sandbox.testing import RunningSandbox

pytestmark = pytest.mark.slow

def register(sandbox: RunningSandbox, server: ClusterServer, names: list[str]) -> None:
    for name in names:
        sandbox.set_webhook(name, server.hook(sandbox.models[name]))


def round_runs(server: ClusterServer, round_number: int, count: int) -> list[dict[str, Any]]:
    runs = [r for r in server.wait_final(count) if r["round"] == round_number]
    assert len(runs) == count, runs
    return runs


def test_rounds_reach_each_worker_once(tmp_path: Path, sandbox: RunningSandbox,
                                       cluster: DaskProcesses) -> None:
    names = ["alpha", "beta", "gamma"]
    config = write_config(tmp_path, sandbox, dict.fromkeys(names, "good"), cluster.address)
    server = ClusterServer(config, sandbox, tmp_path / "server.log")
    try:
        register(sandbox, server, names)
        seen: dict[str, dict[str, int]] = {}
        for rounds_done in (1, 2):
            number = sandbox.open_round()["number"]
            runs = [r for r in server.wait_final(3 * rounds_done) if r["round"] == number]
            assert sorted(r["state"] for r in runs) == ["submitted"] * 3, runs
            subs = [s for s in sandbox.submissions() if s["round_number"] == number]
            assert sorted(s["model_name"] for s in subs) == names
            assert {s["trigger_id"] for s in subs} == {r["trigger_id"] for r in runs}
            with cluster.client() as client:
                stats: dict[str, dict[str, int]] = client.run(transfer_stats)
            new = {worker: {token: count for token, count in files.items()
                            if token not in seen.get(worker, {})}
                   for worker, files in stats.items()}
            # each round file (live features, benchmark models) is written at most once on
            # each worker, however many of the round's tasks that worker ran
            assert all(count == 1 for files in stats.values() for count in files.values()), stats
            assert all(len(files) <= 2 for files in new.values()), new
            assert any(new.values()), stats  # the round's data did travel, as scattered bytes
            seen = stats
    finally:
        server.stop()


def test_with_shared_storage_workers_get_paths_not_bytes(
    tmp_path: Path, sandbox: RunningSandbox, cluster: DaskProcesses
) -> None:
    """`data_transfer = "shared"`: the workers (on this machine, so they see the server's
    data cache at the same path) read the server's round files; nothing is scattered."""
    names = ["alpha", "beta"]
    config = write_config(tmp_path, sandbox, dict.fromkeys(names, "good"), cluster.address,
                          data_transfer="shared")
    server = ClusterServer(config, sandbox, tmp_path / "server.log")
    try:
        register(sandbox, server, names)
        number = sandbox.open_round()["number"]
        runs = round_runs(server, number, 2)
        assert sorted(r["state"] for r in runs) == ["submitted"] * 2, runs
        with cluster.client() as client:
            stats: dict[str, dict[str, int]] = client.run(transfer_stats)
        assert len(stats) == 2 and not any(stats.values()), stats  # no worker wrote bytes
    finally:
        server.stop()


def test_a_worker_killed_mid_round_costs_only_its_own_run(
    tmp_path: Path, sandbox: RunningSandbox, cluster: DaskProcesses
) -> None:
    names = ["alpha", "beta", "gamma"]
    config = write_config(tmp_path, sandbox, {"alpha": "slow", "beta": "good", "gamma": "good"},
                          cluster.address)
    server = ClusterServer(config, sandbox, tmp_path / "server.log")
    try:
        register(sandbox, server, names)
        number = sandbox.open_round()["number"]
        victim = _kill_worker_running(cluster, server, "alpha")
        runs = {r["model"]: r for r in round_runs(server, number, 3)}
        assert runs["beta"]["state"] == runs["gamma"]["state"] == "submitted"
        slow = runs["alpha"]
        # the killed run is retried once: it submits, or fails saying its worker died
        assert slow["state"] == "submitted" and slow["attempts"] == 2 or (
            slow["state"] == "failed" and "worker died" in (slow["error"] or "")), slow
        per_model: dict[str, int] = {}
        for sub in sandbox.submissions():
            if sub["round_number"] == number:
                per_model[sub["model_name"]] = per_model.get(sub["model_name"], 0) + 1
        assert per_model["beta"] == per_model["gamma"] == 1
        assert per_model.get("alpha", 0) == (1 if slow["state"] == "submitted" else 0)
        cluster.wait_for_workers(2)  # its nanny started a fresh worker
        assert victim > 0
    finally:
        server.stop()


def _kill_worker_running(cluster: DaskProcesses, server: ClusterServer, model: str,
                         timeout: float = 30.0) -> int:
    """SIGKILL the worker process that runs `model`'s prediction; returns its pid."""
    deadline = time.monotonic() + timeout
    with cluster.client() as client:
        while time.monotonic() < deadline:
            runs = [r for r in server.runs() if r["model"] == model]
            # executing, not only assigned: a task queued behind another runs again elsewhere
            executing: dict[str, list[str]] = client.run(  # a lambda travels by value
                lambda dask_worker: [str(task.key) for task in dask_worker.state.executing])
            for address, keys in executing.items():
                if runs and any(runs[0]["id"] in key for key in keys):
                    time.sleep(0.5)  # inside the predictor's sleep, well past loading
                    pid: int = client.run(os.getpid, workers=[address])[address]
                    os.kill(pid, signal.SIGKILL)
                    return pid
            time.sleep(0.05)
    raise AssertionError(f"{model}'s task never ran on a worker")
