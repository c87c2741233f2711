"""Shared fixtures.

``sandbox``: a running local Numerai (numerai_autopilot.sandbox) for one test, on 127.0.0.1
and a free port, over real HTTP. Account (see ``SANDBOX_*`` below): public id
``TESTPUBLICID``, secret ``test-secret-key``; models ``alpha``, ``beta``, ``gamma`` (Classic, 8),
``sig`` (Signals, 11) and ``cry`` (Crypto, 12); ids in ``sandbox.models[name]``. Small data
(``TEST_SIZES``: 500 live rows, 60 features, small/medium sets of 12/30), generated once per
session and hard-linked into each test's own ``data_dir``, so a sandbox starts in ~0.1 s.

    def test_x(sandbox):
        sandbox.url                      # base URL: numerapi / NumeraiClient api_url
        sandbox.open_round()             # next round, new live ids, webhooks fired
        sandbox.set_faults(operations={"rounds": {"error_rate": 1.0, "times": 2}})
        sandbox.submissions(); sandbox.wait_for_webhooks(1)

Need other settings? Take ``sandbox_settings``, ``dataclasses.replace`` it, and enter
``running_sandbox(settings)`` yourself.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import settings as hypothesis_settings
from server_harness import RunningServer, StartServer, make_config

from numerai_autopilot.runtime import Runtime
from numerai_autopilot.sandbox.data import DataStore
from numerai_autopilot.sandbox.settings import (
    TEST_SIZES,
    TOURNAMENTS,
    ModelSpec,
    SandboxSettings,
)
from numerai_autopilot.sandbox.testing import RunningSandbox, running_sandbox, serve_asgi
from numerai_autopilot.web import create_app

# Tests press Ctrl-C on the processes they start. Started as a background job (`cmd &`
# without job control), the test run would ignore SIGINT and pass that on to them.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Property tests draw the same examples on every run: CI gives the same answer twice.
hypothesis_settings.register_profile("repeatable", derandomize=True, database=None)
hypothesis_settings.load_profile("repeatable")

SANDBOX_PUBLIC_ID = "TESTPUBLICID"
SANDBOX_SECRET_KEY = "test-secret-key"
SANDBOX_MODELS = (
    ModelSpec("alpha"), ModelSpec("beta"), ModelSpec("gamma"),
    ModelSpec("sig", 11), ModelSpec("cry", 12),
)
SANDBOX_SEED = 42


def _settings(data_dir: Path) -> SandboxSettings:
    return SandboxSettings(
        data_dir=data_dir, public_id=SANDBOX_PUBLIC_ID, secret_key=SANDBOX_SECRET_KEY,
        models=SANDBOX_MODELS, seed=SANDBOX_SEED, sizes=TEST_SIZES,
    )


@pytest.fixture(scope="session")
def sandbox_data_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sandbox data generated once per test session (never modified afterwards)."""
    settings = _settings(tmp_path_factory.mktemp("sandbox-data-cache"))
    store = DataStore(settings)
    store.ensure_static()
    for tournament in TOURNAMENTS:
        for number in range(settings.start_round, settings.start_round + 3):
            store.ensure_round(tournament, number)
    return settings.data_dir


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


@pytest.fixture
def sandbox_settings(tmp_path: Path, sandbox_data_cache: Path) -> SandboxSettings:
    """Settings of the test account, with a private data_dir filled from the session cache."""
    data_dir = tmp_path / "sandbox-data"
    # Files are only ever replaced by rename, never written in place: hard links are safe.
    shutil.copytree(sandbox_data_cache, data_dir, copy_function=_link_or_copy)
    return _settings(data_dir)


@pytest.fixture
def sandbox(sandbox_settings: SandboxSettings) -> Iterator[RunningSandbox]:
    """A running sandbox for this test (see the module docstring)."""
    with running_sandbox(sandbox_settings) as running:
        yield running


@pytest.fixture
def start_server(tmp_path: Path, sandbox: RunningSandbox) -> Iterator[StartServer]:
    """Start our real server (create_app + Runtime, Dask workers) on 127.0.0.1 against the
    sandbox: `start_server({"alpha": predictor("good")}, timeout=4)`; see server_harness."""
    stack = ExitStack()

    def start(
        models: dict[str, str | dict[str, Any]], *, against: Any = None, **model_settings: Any
    ) -> RunningServer:
        config = make_config(tmp_path, against or sandbox, models, **model_settings)
        runtime = Runtime(config)
        app = create_app(config, runtime=runtime)
        url = stack.enter_context(serve_asgi(app, http="auto"))
        deadline = time.monotonic() + 60
        while not httpx.get(f"{url}/healthz").json()["executor_ready"]:
            assert time.monotonic() < deadline, "executor did not start"
            time.sleep(0.05)
        return RunningServer(url, config, runtime)

    with stack:
        yield start
