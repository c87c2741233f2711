"""Where an environment lives, whether it is ready to run its models, and what it holds.

    env_dir(config, "legacy")      # <config folder>/.autopilot/envs/legacy
    env_python(config, "legacy")   # .../legacy/bin/python: its workers' interpreter
    check(config, "legacy")        # EnvStatus(ready=False, problem="... run `autopilot envs
                                   # build legacy`", state=EnvState.STALE)
    describe(config, "legacy")     # {"state": "ready", "python": "3.11.9", "packages": ...}

`check` reads only files (the requirements, the build's record): cheap enough to call before
every run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from numerai_autopilot.config import ENVS_DIR, AppConfig, EnvironmentSettings
from numerai_autopilot.envs.interpreter import (
    HELD,
    PACKAGE,
    WORKER_NEEDS,
    server_python,
    server_versions,
)
from numerai_autopilot.envs.record import EnvState, Inputs, read_record
from numerai_autopilot.envs.requirements import RequirementsFiles, read_requirements
from numerai_autopilot.errors import ConfigError, EnvironmentBuildError

# The packages `autopilot envs list` shows when an environment has them.
KEY_PACKAGES = ("lightgbm", "xgboost", "catboost", "torch", "scikit-learn", "pandas", "numpy",
                "pyarrow")


@dataclass(frozen=True)
class EnvStatus:
    """Whether an environment can run its models now; if not, `problem` says what is wrong
    and the command that fixes it (one sentence, naming the environment). `python` is set
    when ready."""

    ready: bool
    problem: str | None
    state: EnvState = EnvState.READY
    python: str | None = None  # the built environment's full Python version


def env_dir(config: AppConfig, name: str) -> Path:
    """The environment's folder (a link to its current build): `.autopilot/envs/NAME`
    beside the config."""
    return config.resolve_path(ENVS_DIR) / name


def env_python(config: AppConfig, name: str) -> Path:
    """The environment's interpreter, from which its Dask workers are started."""
    return env_dir(config, name) / "bin" / "python"


def settings_of(config: AppConfig, name: str) -> EnvironmentSettings:
    """`[environments.NAME]`; ConfigError lists the configured ones."""
    try:
        return config.environments[name]
    except KeyError:
        known = ", ".join(sorted(config.environments)) or "none"
        raise ConfigError(f"{config.source}: no environment named {name!r} (configured: "
                          f"{known})") from None


def inputs_for(config: AppConfig, settings: EnvironmentSettings
               ) -> tuple[Inputs, RequirementsFiles]:
    """What building `settings` depends on now, and its requirements as read.

    :raises EnvironmentBuildError: a requirements file is missing or unreadable (the message
        names the file and the fix, not the environment).
    """
    files = read_requirements(config.resolve_path(settings.requirements),
                              shown=settings.requirements.as_posix())
    python = settings.python or server_python()
    if python == server_python():  # the overlay: what the requirements name may come from us
        names = {*HELD, PACKAGE, *files.names()}
    else:
        names = {*WORKER_NEEDS, PACKAGE}
    return Inputs(files.digest, python, server_versions(names)), files


def check(config: AppConfig, name: str) -> EnvStatus:
    """Whether environment `name` is built from its current requirements, Python and the
    server's held versions; else the problem and its fix.

    :raises ConfigError: `name` is not configured.
    """
    settings = settings_of(config, name)
    fix = f"run `autopilot envs build {name}`"
    shown = settings.requirements.as_posix()
    try:
        inputs, _ = inputs_for(config, settings)
    except EnvironmentBuildError as exc:
        return EnvStatus(False, f"environment {name!r}: {exc}; then {fix}", EnvState.FAILED)
    record = read_record(env_dir(config, name))
    if record is None:
        return EnvStatus(False, f"environment {name!r} is not built: {fix}", EnvState.MISSING)
    if record.state is EnvState.FAILED and record.hash == inputs.hash:
        return EnvStatus(False, f"environment {name!r} failed to build: {record.error}",
                         EnvState.FAILED)
    if record.hash != inputs.hash:
        changed = ", ".join(inputs.changes(record.inputs, shown)) if record.inputs else \
            f"{shown} could not be read"
        what = "failed its last build, and" if record.state is EnvState.FAILED else "is stale:"
        return EnvStatus(False, f"environment {name!r} {what} {changed} since it was built; "
                         f"{fix}", EnvState.STALE)
    if not env_python(config, name).exists():
        return EnvStatus(False, f"environment {name!r} is broken: {env_python(config, name)} "
                         f"is missing; run `autopilot envs build {name} --force`",
                         EnvState.FAILED)
    return EnvStatus(True, None, EnvState.READY, record.python)


def describe(config: AppConfig, name: str) -> dict[str, Any]:
    """Environment `name` for `autopilot envs list`: state, problem, Python, the key
    packages it imports (each with its version and whether it is the environment's own or
    the server's), its folder and size in bytes.

    :raises ConfigError: `name` is not configured.
    """
    settings = settings_of(config, name)
    status = check(config, name)
    folder = env_dir(config, name)
    record = read_record(folder)
    own = _own_versions(folder)
    packages: dict[str, dict[str, str]] = {}
    for package in KEY_PACKAGES:
        if package in own:
            packages[package] = {"version": own[package], "from": "env"}
        elif record is not None and record.overlay:
            version = server_versions([package])[package]
            if version is not None:
                packages[package] = {"version": version, "from": "server"}
    return {"name": name, "state": status.state.value, "problem": status.problem,
            "python": record.python if record else None,
            "requested_python": settings.python or server_python(),
            "requirements": settings.requirements.as_posix(),
            "built_at": record.built_at if record else None,
            "packages": packages, "path": str(folder), "size_bytes": _size(folder)}


def _own_versions(folder: Path) -> dict[str, str]:
    """The packages installed in the environment itself: canonical name -> version."""
    from packaging.utils import canonicalize_name

    paths = [str(p) for p in folder.glob("lib/python*/site-packages")]
    if not paths:
        return {}
    return {canonicalize_name(dist.metadata["Name"]): dist.version
            for dist in metadata.distributions(path=paths) if dist.metadata["Name"]}


def _size(folder: Path) -> int:
    """Bytes of the files under `folder` (links not followed; 0 when absent)."""
    total = 0
    for root, _, files in os.walk(folder.resolve()):
        for file in files:
            try:
                total += os.lstat(os.path.join(root, file)).st_size
            except OSError:
                continue
    return total
