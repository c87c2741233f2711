"""Environments built for real (venv, pip) from wheels made here, with no network.

``wheels``: a folder of hand-written wheels: ``autopilot_probe`` 1.0 and 2.0 (a module with
``__version__``) and an ``itsdangerous`` 0.0.1 that shadows the server's copy. ``project``: a
config folder of the test's own (``envs_project.Project``: ``requirements`` writes envs/NAME.txt
installing from the wheels only, ``--no-index``; ``config`` writes and loads autopilot.toml).
``built``: one project, built once per session, with environments ``one`` (probe 1.0) and
``two`` (probe 2.0 and the fake itsdangerous).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from env_support import write_wheel
from envs_project import Project, make_project

from numerai_autopilot.config import AppConfig
from numerai_autopilot.envs import build


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("wheels")
    write_wheel(folder, "autopilot_probe", "1.0")
    write_wheel(folder, "autopilot_probe", "2.0")
    write_wheel(folder, "itsdangerous", "0.0.1")
    return folder


@pytest.fixture
def project(tmp_path: Path, wheels: Path) -> Project:
    return make_project(tmp_path / "project", wheels)


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory, wheels: Path) -> tuple[Project, AppConfig]:
    """Environments `one` and `two`, built once for the session's tests."""
    shared = make_project(tmp_path_factory.mktemp("built"), wheels)
    shared.requirements("one", "autopilot_probe==1.0")
    shared.requirements("two", "autopilot_probe==2.0", "itsdangerous==0.0.1")
    config = shared.config("one", "two")
    for name in ("one", "two"):
        build(config, name, log=lambda line: None)
    return shared, config
