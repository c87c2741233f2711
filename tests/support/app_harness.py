"""Our real server (create_app + Runtime) on 127.0.0.1 against the sandbox, with the dashboard,
alerts and metrics settings these tests need. Shared by tests/dashboard, alerts and metrics."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from server_harness import RunningServer, predictor

from numerai_autopilot.config import parse_config
from numerai_autopilot.config.tokens import webhook_url
from numerai_autopilot.runtime import Runtime
from numerai_autopilot.sandbox.testing import RunningSandbox, serve_asgi
from numerai_autopilot.web import create_app

SECRET = "dashboard-test-webhook-secret-089977a5094b05ca"
ADMIN_TOKEN = "dashboard-test-admin-token-0123456789"
USER = "ada"
PASSWORD = "correct horse battery staple"


StartApp = Callable[..., "App"]


def pool(name: str) -> str:
    """A `file.py:function` reference into pool_predictors.py."""
    return predictor(name)


@dataclass
class App(RunningServer):
    """RunningServer with its sandbox, configured with this module's secret and logins."""

    sandbox: RunningSandbox

    def hook_url(self, model: str) -> str:
        return webhook_url(self.url, self.sandbox.models[model], SECRET)

    def register_webhooks(self) -> None:
        """As `setSubmissionWebhook` on Numerai: the sandbox calls us when a round opens."""
        for name in self.config.models:
            self.sandbox.set_webhook(name, self.hook_url(name))


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return f'"{value}"' if isinstance(value, str) else str(value)


def config_text(tmp_path: Path, sandbox: RunningSandbox,
                models: Mapping[str, str | dict[str, Any]], server: dict[str, Any] | None = None,
                alerts: dict[str, Any] | None = None) -> str:
    server = {"secret": SECRET, "admin_token": ADMIN_TOKEN, **(server or {})}
    tables = {
        "numerai": {"api_url": sandbox.url, "timeout": 10},
        "server": {k: v for k, v in server.items() if v is not None},
        "ledger": {"url": f"sqlite:///{tmp_path / 'ledger.db'}"},
        "data": {"cache_dir": str(tmp_path / "data")},
        "executor": {"workers": 2, "memory_limit": "2GiB"},
        "alerts": alerts or {},
        # a model is its predictor reference, or a table of its settings (with `predictor`)
        **{f"models.{name}": {"model_id": sandbox.models[name],
                              **({"predictor": ref} if isinstance(ref, str) else ref)}
           for name, ref in models.items()},
    }
    return "".join(
        f"[{table}]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in values.items()) + "\n"
        for table, values in tables.items()
    )


@contextmanager
def running_app(tmp_path: Path, sandbox: RunningSandbox,
                models: Mapping[str, str | dict[str, Any]], **sections: Any) -> Iterator[App]:
    text = config_text(tmp_path, sandbox, models, **sections)
    (tmp_path / "autopilot.toml").write_text(text)
    env = {"NUMERAI_PUBLIC_ID": sandbox.public_id, "NUMERAI_SECRET_KEY": sandbox.secret_key}
    config = parse_config(text, source="test.toml", base_dir=tmp_path, env=env)
    runtime = Runtime(config)
    with ExitStack() as stack:
        url = stack.enter_context(serve_asgi(create_app(config, runtime=runtime)))
        deadline = time.monotonic() + 60
        while not httpx.get(f"{url}/healthz").json()["executor_ready"]:
            assert time.monotonic() < deadline, "executor did not start"
            time.sleep(0.05)
        yield App(url, config, runtime, sandbox)
