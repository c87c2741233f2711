"""Fixtures for dashboard tests: the real server with a dashboard user and an admin token."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from app_harness import PASSWORD, USER, App, running_app

from numerai_autopilot.sandbox.testing import RunningSandbox
from numerai_autopilot.web.dashboard import hash_password

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


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


@pytest.fixture
def browser() -> Iterator[object]:
    """A headless Chromium (/usr/bin/chromium, as Debian installs it); skipped where it is
    missing, except in CI (`CI=true`), where it must run."""
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing; CI must install it (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
