"""Fixtures for the Signals and Crypto tests: our real server on 127.0.0.1 against the sandbox.

The server helpers are the server tests' own (``tests/server/server_harness.py``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "server"))

from server_harness import RunningServer, StartServer, make_config

from numerai_autopilot.runtime import Runtime
from numerai_autopilot.sandbox.testing import serve_asgi
from numerai_autopilot.server import create_app


@pytest.fixture
def start_server(tmp_path: Path, sandbox: Any) -> Iterator[StartServer]:
    stack = ExitStack()

    def start(
        models: dict[str, str | dict[str, Any]], *, against: Any = None, **model_settings: Any
    ) -> RunningServer:
        config = make_config(tmp_path, against or sandbox, models, **model_settings)
        runtime = Runtime(config)
        url = stack.enter_context(serve_asgi(create_app(config, runtime=runtime)))
        deadline = time.monotonic() + 60
        while not httpx.get(f"{url}/healthz").json()["executor_ready"]:
            assert time.monotonic() < deadline, "executor did not start"
            time.sleep(0.05)
        return RunningServer(url, config, runtime)

    with stack:
        yield start
