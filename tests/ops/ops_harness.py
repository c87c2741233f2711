"""Helpers for the ops tests: the CLI as a subprocess, a server process, a project folder.

Everything runs for real: `python -m numerai_autopilot ...` processes, the server on
127.0.0.1, the sandbox over HTTP. Only `gcloud` is a stand-in (fake_gcloud.py).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from numerai_autopilot.tokens import webhook_token

PREDICTORS = Path(__file__).with_name("ops_predictors.py")
WEBHOOK_SECRET = "ops-test-webhook-secret"
ADMIN_TOKEN = "ops-test-admin-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Project:
    """A folder with autopilot.toml against a sandbox, and the environment to use it."""

    path: Path
    sandbox: Any
    env: dict[str, str] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)

    @property
    def config(self) -> Path:
        return self.path / "autopilot.toml"

    def cli(self, *args: str, env: dict[str, str] | None = None, timeout: float = 240,
            executable: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run `autopilot ARGS -c autopilot.toml`; every output is kept for the secret check."""
        command = [executable] if executable else [sys.executable, "-m", "numerai_autopilot"]
        done = subprocess.run(
            [*command, *args, "-c", str(self.config)],
            cwd=self.path, env={**os.environ, "COLUMNS": "250", **self.env, **(env or {})},
            capture_output=True, text=True, timeout=timeout, check=False,
        )
        self.outputs.append(done.stdout + done.stderr)
        return done

    def secrets(self) -> list[str]:
        """Every value no output may contain: keys, webhook secret, admin token, tokens."""
        values = [self.sandbox.secret_key, WEBHOOK_SECRET, ADMIN_TOKEN,
                  f"{self.sandbox.public_id}${self.sandbox.secret_key}"]
        values += [webhook_token(WEBHOOK_SECRET, mid) for mid in self.sandbox.models.values()]
        return values

    def assert_no_secret_printed(self) -> None:
        for output in self.outputs:
            for secret in self.secrets():
                assert secret not in output, f"a secret was printed:\n{output}"


def write_project(path: Path, sandbox: Any, models: dict[str, str], *,
                  with_ids: bool = True, extra: str = "", **model_settings: str) -> Project:
    """autopilot.toml for `models` (name -> predictor function in ops_predictors.py)."""
    path.mkdir(parents=True, exist_ok=True)
    tables = ""
    for name, function in models.items():
        tables += f"\n[models.{name}]\npredictor = \"{PREDICTORS}:{function}\"\n"
        if with_ids and name in sandbox.models:
            tables += f'model_id = "{sandbox.models[name]}"\n'
        tables += "".join(f'{k} = "{v}"\n' for k, v in model_settings.items())
    (path / "autopilot.toml").write_text(
        f'[numerai]\napi_url = "{sandbox.url}"\ntimeout = 10\n'
        f'[ledger]\nurl = "sqlite:///{path / "ledger.db"}"\n'
        f'[data]\ncache_dir = "{path / "data"}"\n'
        f'[executor]\nworkers = 2\nmemory_limit = "2GiB"\n{extra}{tables}'
    )
    env = {
        "NUMERAI_PUBLIC_ID": sandbox.public_id,
        "NUMERAI_SECRET_KEY": sandbox.secret_key,
        "AUTOPILOT_SECRET": WEBHOOK_SECRET,
        "AUTOPILOT_ADMIN_TOKEN": ADMIN_TOKEN,
    }
    return Project(path, sandbox, env)


class ServerProcess:
    """`autopilot serve` in its own process group (its Dask workers included)."""

    def __init__(self, project: Project, *, args: tuple[str, ...] = (),
                 env: dict[str, str] | None = None, executable: str | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = project.path / f"server-{self.port}.log"
        self._log = self.log_path.open("ab")
        command = [executable] if executable else [sys.executable, "-m", "numerai_autopilot"]
        self.proc = subprocess.Popen(
            [*command, "serve", "-c", str(project.config), "--port", str(self.port), *args],
            cwd=project.path, env={**os.environ, **project.env, **(env or {})},
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 90
        while True:
            assert self.proc.poll() is None, self.log_path.read_text()
            try:
                if httpx.get(f"{self.url}/healthz").json()["executor_ready"]:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not become ready"
            time.sleep(0.1)

    def log_text(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
