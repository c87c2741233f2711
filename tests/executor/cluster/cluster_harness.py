"""Real `dask scheduler` / `dask worker` processes and our server process, all on 127.0.0.1.

    cluster = DaskProcesses(tmp_path, workers=2)      # cluster.address: tcp://127.0.0.1:PORT
    server = ClusterServer(config_path, sandbox, log)  # python -m numerai_autopilot serve
    ...
    server.stop(); cluster.stop()

Every process runs in its own session and is stopped by its own process group id.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from server_process import ServerProcess

from numerai_autopilot.config import webhook_url

SECRET = "cluster-test-secret-136d42729c7d0a0f"
ADMIN_TOKEN = "cluster-test-admin-token-58e1a9c3f7024bd6"
PREDICTORS = Path(__file__).with_name("cluster_predictors.py")
# The executor also sets both on a running scheduler; set at start they hold from the first task.
SCHEDULER_ENV = {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0",
                 "DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION": "1.0"}


def _dask(command: str) -> list[str]:
    binary = Path(sys.executable).with_name("dask")
    if binary.exists():
        return [str(binary), command]
    return [sys.executable, "-m", f"distributed.cli.dask_{command}"]


class _Group:
    def __init__(self, argv: list[str], log: Path, env: dict[str, str]) -> None:
        self._log = log.open("ab")
        self.proc = subprocess.Popen(argv, env={**os.environ, **env}, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        try:  # what is left of the group (a worker its nanny started)
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self._log.close()


def _scheduler_address(where: Path, scheduler: _Group, timeout: float = 60.0) -> str:
    """The address a starting `dask scheduler --scheduler-file where` writes there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if scheduler.proc.poll() is not None:
            raise RuntimeError(f"dask scheduler exited with {scheduler.proc.returncode}")
        try:
            return str(json.loads(where.read_text())["address"])
        except (FileNotFoundError, ValueError, KeyError):
            time.sleep(0.1)
    raise RuntimeError(f"dask scheduler wrote no {where.name} within {timeout:g} s")


class DaskProcesses:
    """A scheduler and `workers` single-threaded workers (each with its nanny).

    Every listener is bound to 127.0.0.1: the scheduler and each worker and nanny with
    --host, on ports the system picks (a port picked here beforehand could be taken by
    another listener before the process binds it; the scheduler's address is read from its
    --scheduler-file), and the dashboards with --dashboard-address.
    """

    def __init__(self, tmp_path: Path, workers: int = 2, memory_limit: str = "2GiB") -> None:
        tmp_path.mkdir(parents=True, exist_ok=True)
        where = tmp_path / "scheduler.json"
        where.unlink(missing_ok=True)
        self.groups = [_Group([*_dask("scheduler"), "--host", "127.0.0.1", "--port", "0",
                               "--scheduler-file", str(where),
                               "--dashboard-address", "127.0.0.1:0"],
                              tmp_path / "scheduler.log", SCHEDULER_ENV)]
        try:
            self.address = _scheduler_address(where, self.groups[0])
        except BaseException:
            self.stop()
            raise
        for i in range(workers):
            self.groups.append(_Group(
                [*_dask("worker"), self.address, "--host", "127.0.0.1",
                 "--dashboard-address", "127.0.0.1:0",
                 "--nworkers", "1", "--nthreads", "1", "--memory-limit", memory_limit,
                 "--name", f"worker-{i}", "--local-directory", str(tmp_path / f"worker-{i}")],
                tmp_path / f"worker-{i}.log", SCHEDULER_ENV))
        try:
            self.wait_for_workers(workers)
        except BaseException:
            self.stop()
            raise

    def client(self) -> Any:
        from distributed import Client

        return Client(self.address, timeout=10,  # type: ignore[no-untyped-call]
                      set_as_default=False)

    def wait_for_workers(self, count: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with self.client() as client:
                    client.wait_for_workers(count, timeout=max(deadline - time.monotonic(), 1))
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self) -> None:
        for group in reversed(self.groups):
            group.stop()


def write_config(tmp_path: Path, sandbox: Any, models: dict[str, str], scheduler: str,
                 data_transfer: str | None = None) -> Path:
    """autopilot.toml for `models` (sandbox name -> cluster_predictors function)."""
    text = (f'[numerai]\napi_url = "{sandbox.url}"\ntimeout = 10\n'
            f'[server]\nsecret = "{SECRET}"\nadmin_token = "{ADMIN_TOKEN}"\nrun_lease = "30s"\n'
            f'[ledger]\nurl = "sqlite:///{tmp_path / "ledger.db"}"\n'
            f'[data]\ncache_dir = "{tmp_path / "data"}"\n'
            f'[executor]\nscheduler = "{scheduler}"\n')
    if data_transfer is not None:
        text += f'data_transfer = "{data_transfer}"\n'
    for name, function in models.items():
        text += (f'\n[models.{name}]\nmodel_id = "{sandbox.models[name]}"\n'
                 f'predictor = "{PREDICTORS}:{function}"\ntimeout = "60s"\n')
    path = tmp_path / "autopilot.toml"
    path.write_text(text)
    return path


class ClusterServer(ServerProcess):
    """Our server as a process pointed at the external scheduler, ready once its executor is."""

    def __init__(self, config: Path, sandbox: Any, log: Path) -> None:
        env = {"NUMERAI_PUBLIC_ID": sandbox.public_id, "NUMERAI_SECRET_KEY": sandbox.secret_key}
        super().__init__(config, env, log)
        self.ready(60)

    def hook(self, model_id: str) -> str:
        return webhook_url(self.url, model_id, SECRET)

    def runs(self) -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = httpx.get(
            f"{self.url}/api/runs", params={"limit": 1000},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).json()
        return runs

    def wait_final(self, count: int, timeout: float = 90.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        runs: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            runs = self.runs()
            if len(runs) >= count and all(r["state"] in ("submitted", "failed", "skipped")
                                          for r in runs):
                return runs
            time.sleep(0.1)
        raise AssertionError(f"runs not final after {timeout} s: "
                             f"{[(r['model'], r['state']) for r in runs]}")

