"""Processes the benchmark drives: the sandbox, our server, the baseline app, a Dask cluster.

Every process is started in its own session on 127.0.0.1 and a free port, and stopped by its
own process group id (never by name). `TreeSampler` samples the RSS of a process and all its
children (the server and its Dask workers) with psutil.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil

from numerai_autopilot.sandbox.testing import free_port

BENCH = Path(__file__).resolve().parent
PYTHON = sys.executable
BIN = Path(PYTHON).parent


def allow_open_files(n: int) -> None:
    """Raise this process's soft limit of open files to at least `n` (up to the hard limit),
    for the processes it starts: a server answering a burst holds a socket per webhook."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= n:
        return
    wanted = n if hard == resource.RLIM_INFINITY else min(n, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


class Proc:
    """A child process in its own session; its log goes to `log`."""

    def __init__(self, argv: Sequence[str], log: Path, env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> None:
        self.started = time.perf_counter()
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            list(argv), env={**os.environ, **(env or {})}, stdout=self._log,
            stderr=subprocess.STDOUT, start_new_session=True, cwd=cwd,
        )
        self.log_path = log
        self.argv = list(argv)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def check(self) -> None:
        if not self.alive():
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{self.argv[:3]} exited ({self.proc.returncode}):\n{tail}")

    def stop(self, timeout: float = 20.0) -> None:
        if self.alive():
            with _suppress_lookup():
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        # workers may outlive a parent that exited: end what is left of the group
        with _suppress_lookup():
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._log.close()

    def kill(self) -> None:
        with _suppress_lookup():
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


class _suppress_lookup:
    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: object, tb: object) -> bool:
        return exc_type is not None and issubclass(exc_type, ProcessLookupError | PermissionError)


def wait_http(url: str, proc: Proc, timeout: float = 120.0, poll_s: float = 0.005) -> float:
    """Poll `url` until it answers 200; returns seconds since `proc` started."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2) as http:
        while True:
            proc.check()
            try:
                if http.get(url).status_code == 200:
                    return time.perf_counter() - proc.started
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer within {timeout} s")
            time.sleep(poll_s)


class Sandbox:
    """The sandbox in its own process (bench/sandbox_main.py), driven over its control API."""

    def __init__(self, data_dir: Path, models: Sequence[str], quick: bool, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = Proc([PYTHON, str(BENCH / "sandbox_main.py"), "--port", str(self.port),
                          "--data-dir", str(data_dir), "--models", ",".join(models),
                          *(["--quick"] if quick else [])], log)
        wait_http(f"{self.url}/_sandbox/state", self.proc, timeout=300, poll_s=0.05)
        self.http = httpx.Client(timeout=60)
        state = self.control("GET", "state")
        self.models: dict[str, str] = {m["name"]: m["id"] for m in state["account"]["models"]}

    def control(self, method: str, path: str, json: Any = None) -> Any:
        response = self.http.request(method, f"{self.url}/_sandbox/{path}", json=json)
        response.raise_for_status()
        return response.json()

    def graphql(self, query: str, variables: dict[str, Any], keys: tuple[str, str]) -> Any:
        response = self.http.post(self.url + "/", json={"query": query, "variables": variables},
                                  headers={"Authorization": f"Token {keys[0]}${keys[1]}"})
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise RuntimeError(f"sandbox GraphQL error: {body['errors']}")
        return body["data"]

    def set_webhook(self, model_id: str, url: str | None, keys: tuple[str, str]) -> None:
        self.graphql("mutation($m: String!, $u: String) { setSubmissionWebhook(modelId: $m, "
                     "newSubmissionWebhook: $u) }", {"m": model_id, "u": url}, keys)

    def open_round(self) -> int:
        return int(self.control("POST", "rounds/open", {"tournament": 8})["number"])

    def current_round(self) -> int:
        return int(self.control("GET", "state")["current_rounds"]["8"]["number"])

    def submissions(self, round_number: int) -> list[dict[str, Any]]:
        return [s for s in self.control("GET", "submissions")
                if s["round_number"] == round_number]

    def downloads(self, round_number: int) -> list[dict[str, Any]]:
        return [d for d in self.control("GET", "downloads") if d["round_number"] == round_number]

    def close(self) -> None:
        self.http.close()
        self.proc.stop()


class TreeSampler:
    """Peak RSS (MiB) of a process and all its descendants, sampled every `every_s`."""

    def __init__(self, pid: int, every_s: float = 0.05) -> None:
        self._root = psutil.Process(pid)
        self._every = every_s
        self._peak = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sampling = threading.Lock()  # held by a sample, and through a pause
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def _tree(self) -> list[psutil.Process]:
        """The process and its descendants; empty once the process is gone."""
        try:
            return [self._root, *self._root.children(recursive=True)]
        except psutil.Error:
            return []

    def _sample(self) -> int:
        total = 0
        for proc in self._tree():
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                continue
        return total

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            with self._sampling:
                rss = self._sample()
            with self._lock:
                self._peak = max(self._peak, rss)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """No sampling inside (a sample walks /proc for the whole tree, CPU taken from the
        cores a timed burst shares). For timings only: the peak misses what happens inside."""
        with self._sampling:  # after a sample under way; the sampler waits until the end
            yield

    def reset(self) -> None:
        with self._lock:
            self._peak = self._sample()

    def peak_mb(self) -> float:
        with self._lock:
            return max(self._peak, self._sample()) / 2**20

    def cpu_s(self) -> float:
        """CPU seconds (user + system) used so far by the process and its descendants."""
        total = 0.0
        for proc in self._tree():
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
        return total

    def wait_idle(self, below: float = 0.1, window_s: float = 0.5, timeout: float = 30.0
                  ) -> float:
        """Wait until the tree used under `below` of a core over `window_s` (a server done
        with its start-up work or its last round). Returns the seconds waited; says so on
        stderr when the tree never went idle within `timeout`."""
        started = time.monotonic()
        used = 0.0
        while time.monotonic() - started < timeout:
            before = self.cpu_s()
            time.sleep(window_s)
            used = (self.cpu_s() - before) / window_s
            if used < below:
                return time.monotonic() - started
        print(f"-- the server was not idle after {timeout:g} s ({used:.2f} of a core in "
              f"the last {window_s:g} s); going on", file=sys.stderr, flush=True)
        return time.monotonic() - started

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


class DaskCluster:
    """`dask scheduler` and `dask worker` processes, all bound to 127.0.0.1 only."""

    def __init__(self, workdir: Path, workers: int = 2, memory_limit: str = "3GiB",
                 nthreads: int = 1) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        env = {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0",
               "DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION": "1.0"}
        where = workdir / "scheduler.json"  # its address, on a port the system picks
        where.unlink(missing_ok=True)
        self.procs: list[Proc] = [Proc(
            [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
             "--scheduler-file", str(where), "--dashboard-address", "127.0.0.1:0"],
            workdir / "scheduler.log", env)]
        self.worker_procs: list[Proc] = []
        deadline = time.monotonic() + 60
        while not where.exists() or not where.read_text().strip().endswith("}"):
            self.procs[0].check()
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("dask scheduler wrote no scheduler file within 60 s")
            time.sleep(0.1)
        self.address = str(json.loads(where.read_text())["address"])
        for i in range(workers):
            # --host binds worker and nanny to 127.0.0.1 on ports the system picks (one
            # picked beforehand could be taken before the worker binds it)
            proc = Proc([str(BIN / "dask"), "worker", self.address, "--host", "127.0.0.1",
                         "--dashboard-address",
                         "127.0.0.1:0", "--nworkers", "1", "--nthreads",
                         str(nthreads), "--memory-limit", memory_limit, "--name",
                         f"bench-worker-{i}", "--local-directory", str(workdir / f"w{i}")],
                        workdir / f"worker-{i}.log", env)
            self.worker_procs.append(proc)
            self.procs.append(proc)
        try:
            self._wait(workers)
        except BaseException:
            self.stop()
            raise

    def _wait(self, workers: int, timeout: float = 60.0) -> None:
        from distributed import Client

        deadline = time.monotonic() + timeout
        while True:
            for proc in self.procs:
                proc.check()
            try:
                with Client(self.address, timeout=5) as client:  # type: ignore[no-untyped-call]
                    client.wait_for_workers(workers, timeout=max(deadline - time.monotonic(), 1))
                    return
            except (OSError, TimeoutError):
                if time.monotonic() > deadline:
                    raise

    def pids(self) -> list[int]:
        return [p.pid for p in self.worker_procs]

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop(timeout=10)
