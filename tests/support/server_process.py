"""`python -m numerai_autopilot serve` as a real process, for tests that kill or restart it.

    server = ServerProcess(config_path, env, tmp_path / "server.log").ready()
    server.kill()   # SIGKILL of its whole process group: the server and its Dask workers
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import psutil

from numerai_autopilot.sandbox.testing import free_port

__all__ = ["ServerProcess", "free_port"]


class ServerProcess:
    """The server in its own process group (its Dask workers included), on a free port."""

    def __init__(
        self,
        config: Path,
        env: dict[str, str],
        log: Path,
        *,
        args: Sequence[str] = (),
        cwd: Path | None = None,
        executable: str | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        self._log = log.open("ab")
        command = [executable] if executable else [sys.executable, "-m", "numerai_autopilot"]
        self.proc = subprocess.Popen(
            [*command, "serve", "-c", str(config), "--port", str(self.port), *args],
            cwd=cwd, env={**os.environ, **env}, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def ready(self, timeout: float = 90.0) -> ServerProcess:
        """Wait until /healthz says the executor is ready; fail with the server's log."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}:\n{self.log_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=5).json()["executor_ready"]:
                    return self
            except (httpx.TransportError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"server not ready in {timeout} s:\n{self.log_text()}")
            time.sleep(0.1)

    def log_text(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def rss(self) -> int:
        """Resident memory of the server process itself (not its Dask workers)."""
        return int(psutil.Process(self.proc.pid).memory_info().rss)

    def kill(self) -> None:
        """SIGKILL the whole process group: the server and its Dask workers, at once."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self._reap_group()

    def stop(self) -> None:
        """SIGTERM (a graceful shutdown), SIGKILL after 20 s; then whatever is left."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._reap_group()
        self._log.close()

    def _reap_group(self) -> None:
        """Kill what is left of the group (workers outliving their nanny)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
