"""Helpers for server tests: our real server on 127.0.0.1 against the sandbox."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from numerai_autopilot.config import AppConfig, parse_config
from numerai_autopilot.config.tokens import webhook_url
from numerai_autopilot.ledger import Run, RunState
from numerai_autopilot.runtime import Runtime

POOL = Path(__file__).with_name("pool_predictors.py")
SECRET = "test-webhook-secret-e38b5e495663060e"
ADMIN_TOKEN = "test-admin-token-5f0c81d2a9e34b76c1d8"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}  # the JSON API, /metrics, the dashboard


def predictor(name: str) -> str:
    """A `file.py:function` reference into pool_predictors.py."""
    return f"{POOL}:{name}"


@dataclass
class RunningServer:
    url: str
    config: AppConfig
    runtime: Runtime

    def hook_url(self, model: str) -> str:
        return webhook_url(self.url, self.model_id(model), SECRET)

    def model_id(self, model: str) -> str:
        model_id = self.config.models[model].model_id
        assert model_id is not None
        return model_id

    def runs(self) -> list[Run]:
        return self.runtime.ledger.runs(limit=1000)

    def wait_final(self, count: int, timeout: float = 90.0) -> list[Run]:
        """Wait until `count` runs exist and all are final (submitted, failed or skipped)."""
        deadline = time.monotonic() + timeout
        runs: list[Run] = []
        while time.monotonic() < deadline:
            runs = self.runs()
            if len(runs) >= count and all(r.state.is_final for r in runs):
                return runs
            time.sleep(0.1)
        states = {r.model_name: r.state.value for r in runs}
        raise AssertionError(f"runs not final after {timeout} s: {states}")


class StartServer(Protocol):
    def __call__(
        self, models: dict[str, str | dict[str, Any]], *, against: Any = None,
        **overrides: Any
    ) -> RunningServer: ...


def make_config(
    tmp_path: Path, sandbox: Any, models: dict[str, str | dict[str, Any]], **settings: Any
) -> AppConfig:
    """Write `tmp_path/autopilot.toml` for these models against `sandbox`, and load it.

    `models` maps a sandbox model name to a predictor reference, or to a dict of that model's
    settings (with `predictor`). Keyword `server_X=...` sets `[server] X` (None: unset, e.g.
    `server_admin_token=None`); `environments={"NAME": {...}}` adds `[environments.NAME]`
    tables; any other keyword is a setting of every model.
    """
    environments = settings.pop("environments", None) or {}
    server = {"secret": SECRET, "admin_token": ADMIN_TOKEN,
              "run_lease": settings.pop("run_lease", "30s")}
    server.update({k.removeprefix("server_"): settings.pop(k) for k in list(settings)
                   if k.startswith("server_")})
    server = {k: v for k, v in server.items() if v is not None}
    tables = ""
    for name, spec in models.items():
        table = {"predictor": spec} if isinstance(spec, str) else dict(spec)
        table = {"model_id": sandbox.models[name], **settings, **table}
        tables += f"\n[models.{name}]\n" + _lines(table)
    for name, table in environments.items():
        tables += f"\n[environments.{name}]\n" + _lines(table)
    text = (
        f'[numerai]\napi_url = "{sandbox.url}"\ntimeout = 10\n'
        f"[server]\n{_lines(server)}"
        f'[ledger]\nurl = "sqlite:///{tmp_path / "ledger.db"}"\n'
        f'[data]\ncache_dir = "{tmp_path / "data"}"\n'
        f'[executor]\nworkers = 2\nmemory_limit = "2GiB"\n{tables}'
    )
    (tmp_path / "autopilot.toml").write_text(text)
    return parse_config(text, source="test.toml", base_dir=tmp_path, env=sandbox_env(sandbox))


def _lines(table: dict[str, Any]) -> str:
    return "".join(f"{key} = {_toml(value)}\n" for key, value in table.items())


def sandbox_env(sandbox: Any) -> dict[str, str]:
    """The environment a server process needs for the sandbox's account."""
    return {"NUMERAI_PUBLIC_ID": sandbox.public_id, "NUMERAI_SECRET_KEY": sandbox.secret_key}


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):  # an inline table, e.g. a blend's weights
        return "{ " + ", ".join(f"{key} = {_toml(v)}" for key, v in value.items()) + " }"
    return f'"{value}"' if isinstance(value, str) else str(value)


def submitted(runs: list[Run]) -> list[Run]:
    return [r for r in runs if r.state is RunState.SUBMITTED]
