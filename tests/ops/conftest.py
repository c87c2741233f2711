"""Fixtures for the ops tests: a sandbox and a real server shared by one module's tests."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from ops_harness import Project, start_server, write_project
from server_process import ServerProcess

from numerai_autopilot.sandbox import TEST_SIZES, ModelSpec, SandboxSettings
from numerai_autopilot.sandbox.testing import RunningSandbox, running_sandbox


@pytest.fixture(scope="module")
def shared_sandbox(
    tmp_path_factory: pytest.TempPathFactory, sandbox_data_cache: Path
) -> Iterator[RunningSandbox]:
    """One sandbox for a module: the test account of tests/conftest.py, its cached data."""
    data_dir = tmp_path_factory.mktemp("ops-sandbox") / "data"
    shutil.copytree(sandbox_data_cache, data_dir)
    settings = SandboxSettings(
        data_dir=data_dir, public_id="TESTPUBLICID", secret_key="test-secret-key",
        models=(ModelSpec("alpha"), ModelSpec("beta"), ModelSpec("gamma")), seed=42,
        sizes=TEST_SIZES,
    )
    with running_sandbox(settings) as running:
        yield running


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, shared_sandbox: RunningSandbox
) -> Iterator[tuple[Project, ServerProcess]]:
    """alpha (good), beta (raises), gamma (slow) served by a real `autopilot serve` process
    with JSON logs, its webhooks registered in the sandbox by `autopilot register`."""
    project = write_project(
        tmp_path_factory.mktemp("ops-project"), shared_sandbox,
        {"alpha": "good", "beta": "raises", "gamma": "slow"},
    )
    server = start_server(project, args=("--log-format", "json"),
                           env={"GOOGLE_CLOUD_PROJECT": "test-project"})
    try:
        done = project.cli("register", "--base-url", server.url)
        assert done.returncode == 0, done.stdout + done.stderr
        yield project, server
    finally:
        server.stop()
    project.assert_no_secret_printed()
