"""Fixtures for the reliability suite: the sandbox with distinctive keys, server processes.

The sandbox account here uses keys that appear nowhere else, so the secret greps of
`assert_no_secrets` cannot match by accident.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from reliability_harness import PUBLIC_ID, SECRET_KEY, Servers

from numerai_autopilot.sandbox.settings import SandboxSettings


@pytest.fixture
def sandbox_settings(sandbox_settings: SandboxSettings) -> SandboxSettings:
    """The shared test account's data, with this suite's keys (model ids follow the key)."""
    return dataclasses.replace(sandbox_settings, public_id=PUBLIC_ID, secret_key=SECRET_KEY)


@pytest.fixture
def servers() -> Iterator[Servers]:
    pool = Servers()
    yield pool
    for server in pool.started:
        server.stop()
