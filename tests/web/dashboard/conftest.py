"""Fixtures for dashboard tests: the real server with a dashboard user and an admin token."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from app_harness import PASSWORD, USER, App, running_app

from numerai_autopilot.sandbox.testing import RunningSandbox
from numerai_autopilot.web.dashboard import hash_password


@pytest.fixture
def start_app(tmp_path: Path, sandbox: RunningSandbox) -> Iterator[Callable[..., App]]:
    stack = ExitStack()

    def start(models: dict[str, str], **sections: Any) -> App:
        sections.setdefault("server", {
            "dashboard_user": USER,
            "dashboard_password_hash": hash_password(PASSWORD, iterations=2000),
        })
        return stack.enter_context(running_app(tmp_path, sandbox, models, **sections))

    with stack:
        yield start
