"""The reliability suite's harness: real server processes against the sandbox, and checks.

    config = write_config(tmp_path, sandbox, {"alpha": predictor("good")})
    server = ServerProcess(config, sandbox_env(sandbox), tmp_path / "server.log").ready()
    register_webhooks(sandbox, server.url, ["alpha"])
    sandbox.open_round()                       # the sandbox POSTs every webhook, like Numerai
    runs = wait_final(ledger, 1)
    assert_submitted_once(sandbox, ledger)

Everything a test saw (server logs, API answers, ledger rows, CLI output) goes into a
`Capture`, which `assert_no_secrets` greps for every key, secret and webhook token.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from server_process import ServerProcess

from numerai_autopilot.config.tokens import webhook_token, webhook_url
from numerai_autopilot.ledger import Ledger, Run, RunState
from numerai_autopilot.sandbox.settings import TEST_SIZES, ModelSpec, SandboxSettings
from numerai_autopilot.sandbox.testing import RunningSandbox

T = TypeVar("T")

PREDICTORS = Path(__file__).with_name("reliability_predictors.py")
SECRET = "rel-webhook-secret-3c9e0f6a-b582201d18f139f3"
OLD_SECRET = "rel-old-webhook-secret-77d2b1-3ae2043a7362243e"
ADMIN_TOKEN = "rel-admin-token-9e4c2b7a1d60f835e2c4"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}  # the JSON API and /metrics
# Distinctive keys, so that grepping for them cannot match anything by accident.
PUBLIC_ID = "RELPUBLICIDQ7X4Z9"
SECRET_KEY = "rel-numerai-secret-key-b81f2e9d4c"
PG_URL = os.environ.get(
    "AUTOPILOT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def predictor(name: str) -> str:
    """A `file.py:function` reference into reliability_predictors.py."""
    return f"{PREDICTORS}:{name}"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value) if isinstance(value, str) else str(value)


def write_config(
    directory: Path,
    sandbox: RunningSandbox,
    models: dict[str, str],
    *,
    ledger_url: str | None = None,
    server: dict[str, Any] | None = None,
    model_settings: dict[str, Any] | None = None,
    workers: int = 2,
) -> Path:
    """Write `directory/autopilot.toml` for `models` (name -> predictor) against `sandbox`.

    Keys stay out of the file (they come from `sandbox_env`), as the README advises.
    """
    directory.mkdir(parents=True, exist_ok=True)
    server_table = {"secret": SECRET, "admin_token": ADMIN_TOKEN, "run_lease": "2s",
                    "max_concurrent_runs": 8, **(server or {})}
    lines = [
        "[numerai]", f"api_url = {_toml(sandbox.url)}", "timeout = 10",
        "[server]", *(f"{k} = {_toml(v)}" for k, v in server_table.items()),
        "[ledger]", f"url = {_toml(ledger_url or 'sqlite:///' + str(directory / 'ledger.db'))}",
        "[data]", f"cache_dir = {_toml(str(directory / 'data'))}",
        "[executor]", f"workers = {workers}", 'memory_limit = "1GiB"',
    ]
    for name, ref in models.items():
        lines += [f"[models.{name}]", f"model_id = {_toml(sandbox.models[name])}",
                  f"predictor = {_toml(ref)}", 'timeout = "60s"']
        lines += [f"{k} = {_toml(v)}" for k, v in (model_settings or {}).items()]
    path = directory / "autopilot.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def sandbox_env(sandbox: RunningSandbox, **extra: str) -> dict[str, str]:
    return {"NUMERAI_PUBLIC_ID": sandbox.public_id, "NUMERAI_SECRET_KEY": sandbox.secret_key,
            **extra}


class Servers:
    """Starts server processes for one test and stops every one of them afterwards."""

    def __init__(self) -> None:
        self.started: list[ServerProcess] = []

    def start(self, config: Path, env: dict[str, str], log: Path, *, wait: bool = True) -> ServerProcess:
        server = ServerProcess(config, env, log)
        self.started.append(server)
        return server.ready() if wait else server


def wait_until(predicate: Callable[[], T | None], timeout: float, what: str,
               interval: float = 0.05) -> T:
    """Poll `predicate` until it returns something truthy; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def wait_final(ledger: Ledger, count: int, timeout: float = 90.0,
               where: Callable[[Run], bool] = lambda run: True) -> list[Run]:
    """Wait until `count` runs (matching `where`) exist and every run is final."""
    runs: list[Run] = []

    def done() -> list[Run] | None:
        nonlocal runs
        runs = [r for r in ledger.runs(limit=5000) if where(r)]
        return runs if len(runs) >= count and all(r.state.is_final for r in runs) else None

    try:
        return wait_until(done, timeout, f"{count} final runs", interval=0.2)
    except AssertionError:
        states = [(r.model_name, r.state.value, r.error) for r in runs]
        raise AssertionError(f"runs not final after {timeout} s: {states}") from None


def post_webhook(url: str, model_id: str, payload: Any, secret: str = SECRET,
                 client: httpx.Client | None = None) -> httpx.Response:
    target = webhook_url(url, model_id, secret)
    if client is not None:
        return client.post(target, json=payload)
    return httpx.post(target, json=payload, timeout=30)


def register_webhooks(sandbox: RunningSandbox, base_url: str, models: Iterable[str],
                      secret: str = SECRET) -> None:
    """setSubmissionWebhook for each model, as a user does on Numerai."""
    for name in models:
        sandbox.set_webhook(name, webhook_url(base_url, sandbox.models[name], secret))


def open_round(sandbox: RunningSandbox, length_s: float | None = None) -> dict[str, Any]:
    """Open the next Classic round (the sandbox fires the webhooks); `length_s` until it closes."""
    body: dict[str, Any] = {"tournament": 8}
    if length_s is not None:
        body["length_s"] = length_s
    answer = httpx.post(f"{sandbox.url}/_sandbox/rounds/open", json=body, timeout=60)
    answer.raise_for_status()
    opened: dict[str, Any] = answer.json()
    return opened


def submissions_by_trigger(sandbox: RunningSandbox) -> Counter[str | None]:
    return Counter(s["trigger_id"] for s in sandbox.submissions())


def assert_submitted_once(sandbox: RunningSandbox, ledger: Ledger,
                          runs: list[Run] | None = None) -> list[Run]:
    """Every run submitted, each trigger exactly once at Numerai, ids matching the ledger;
    nothing left unfinished."""
    runs = runs if runs is not None else ledger.runs(limit=5000)
    problems = [(r.model_name, r.state.value, r.error) for r in runs
                if r.state is not RunState.SUBMITTED]
    assert not problems, problems
    subs = {s["trigger_id"]: s for s in sandbox.submissions()}
    counts = submissions_by_trigger(sandbox)
    for run in runs:
        assert counts[run.trigger_id] == 1, (run.model_name, run.trigger_id, counts[run.trigger_id])
        assert subs[run.trigger_id]["id"] == run.submission_id
        assert subs[run.trigger_id]["model_id"] == run.model_id
    assert ledger.unfinished() == []
    return runs


def assert_no_put_then_create(sandbox: RunningSandbox) -> None:
    """Every submission Numerai holds names a file whose PUT succeeded."""
    stored = {u["filename"] for u in sandbox.uploads() if u["status_code"] == 200}
    for sub in sandbox.submissions():
        assert sub["filename"] in stored, f"submission {sub['id']} without a stored PUT"


# -- secrets ----------------------------------------------------------------------------------


@dataclass
class Capture:
    """Everything emitted during a test, by where it came from."""

    texts: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, text: str) -> None:
        self.texts[name] = self.texts.get(name, "") + text

    def add_server(self, server: ServerProcess, label: str = "server") -> None:
        self.add(f"{label} log {server.port}", server.log_text())

    def add_api(self, url: str) -> None:
        """The JSON API's answers: every run, its stages and its log lines."""
        with httpx.Client(base_url=url, timeout=30, headers=AUTH) as client:
            listing = client.get("/api/runs", params={"limit": 1000})
            self.add(f"api {url} /api/runs", listing.text)
            if listing.status_code != 200:
                return
            for run in listing.json():
                for suffix in ("", "/stages", "/logs"):
                    self.add(f"api {url} run{suffix}", client.get(f"/api/runs/{run['id']}{suffix}").text)

    def add_ledger(self, ledger: Ledger) -> None:
        """Every run row (error, detail, owner), stage and log line."""
        for run in ledger.runs(limit=5000):
            self.add("ledger runs", repr(run))
            self.add("ledger stages", repr(ledger.stages(run.id)))
            self.add("ledger logs", repr(ledger.logs(run.id)))

    def add_cli(self, config: Path, env: dict[str, str]) -> None:
        """`autopilot runs` (what a person reads)."""
        done = subprocess.run(
            [sys.executable, "-m", "numerai_autopilot", "runs", "-c", str(config), "--limit", "200"],
            env={**os.environ, **env, "COLUMNS": "200"}, capture_output=True, text=True,
            timeout=60, check=False,
        )
        self.add("cli runs", done.stdout + done.stderr)

    def add_sandbox(self, sandbox: RunningSandbox) -> None:
        """What the sandbox saw of our requests (webhook deliveries are redacted there)."""
        self.add("sandbox uploads", json.dumps(sandbox.uploads()))
        self.add("sandbox submissions", json.dumps(sandbox.submissions()))


def secret_values(sandbox: RunningSandbox, extra_secrets: Iterable[str] = ()) -> dict[str, str]:
    """Every value that must never be written anywhere, by name."""
    values = {
        "numerai secret key": sandbox.secret_key,
        "numerai auth token": f"{sandbox.public_id}${sandbox.secret_key}",
        "numerai auth header": f"Token {sandbox.public_id}",
        "webhook secret": SECRET,
        "old webhook secret": OLD_SECRET,
        "admin token": ADMIN_TOKEN,
    }
    for secret in (SECRET, OLD_SECRET, *extra_secrets):
        for name, model_id in sandbox.models.items():
            values[f"webhook token {name} ({secret[:7]}...)"] = webhook_token(secret, model_id)
    return values


def assert_no_secrets(capture: Capture, secrets: dict[str, str]) -> None:
    assert capture.texts, "nothing was captured"
    found = [(what, where) for where, text in capture.texts.items()
             for what, value in secrets.items() if value in text]
    assert not found, f"secrets written out: {found}"


# -- a sandbox for a whole test module ----------------------------------------------------------


def module_sandbox_settings(directory: Path, cache: Path, extra_models: tuple[str, ...] = ()
                            ) -> SandboxSettings:
    """Settings like the `sandbox` fixture's (same data, this suite's keys), in `directory`;
    `extra_models` adds Classic models."""
    data_dir = directory / "sandbox-data"

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(cache, data_dir, copy_function=link)
    return SandboxSettings(
        data_dir=data_dir, public_id=PUBLIC_ID, secret_key=SECRET_KEY,
        models=(ModelSpec("alpha"), ModelSpec("beta"), ModelSpec("gamma"),
                ModelSpec("sig", 11), ModelSpec("cry", 12), *map(ModelSpec, extra_models)),
        seed=42, sizes=TEST_SIZES,
    )
