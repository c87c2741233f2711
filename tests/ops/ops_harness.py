"""Helpers for the ops tests: the CLI as a subprocess, a server process, a project folder.

Everything runs for real: `python -m numerai_autopilot ...` processes, the server on
127.0.0.1, the sandbox over HTTP; `gcloud` is the real one, against fake_google.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server_process import ServerProcess

from numerai_autopilot.config import webhook_token

PREDICTORS = Path(__file__).with_name("ops_predictors.py")
WEBHOOK_SECRET = "ops-test-webhook-secret-0c2adb28f019b2f3"
ADMIN_TOKEN = "ops-test-admin-token-04783349c01968a6"


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


def start_server(project: Project, *, args: tuple[str, ...] = (),
                 env: dict[str, str] | None = None, executable: str | None = None) -> ServerProcess:
    """`autopilot serve` for `project`, ready (executor up); its log in the project folder."""
    log = project.path / f"server-{len(list(project.path.glob('server-*.log')))}.log"
    return ServerProcess(project.config, {**project.env, **(env or {})}, log, args=args,
                         cwd=project.path, executable=executable).ready(90)
