"""Fixtures for the Numerai client's tests: clients pointed at the ``sandbox`` fixture."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from numerai_helpers import FAST_RETRY

from numerai_autopilot.numerai import NumeraiClient
from numerai_autopilot.sandbox.testing import RunningSandbox


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """The httpx client the Numerai client is given, as the server gives it one."""
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def client(sandbox: RunningSandbox, http: httpx.AsyncClient) -> NumeraiClient:
    """A client with the sandbox account's keys."""
    return NumeraiClient(
        http, sandbox.url, sandbox.public_id, sandbox.secret_key, retry=FAST_RETRY, timeout=10
    )


@pytest.fixture
def anonymous(sandbox: RunningSandbox, http: httpx.AsyncClient) -> NumeraiClient:
    """A client without keys."""
    return NumeraiClient(http, sandbox.url, retry=FAST_RETRY, timeout=10)
