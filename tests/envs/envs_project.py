"""The environment tests' project: a config folder with
`[environments.NAME]` tables whose requirements install from hand-written wheels
only (env_support.write_wheel)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from env_support import requirements

from numerai_autopilot.config import AppConfig, load_config


@dataclass
class Project:
    """A config folder with `[environments.NAME]` tables and their requirements files."""

    folder: Path
    wheels: Path

    def requirements(self, name: str, *lines: str) -> Path:
        """envs/NAME.txt installing `lines` from the wheels folder only."""
        return requirements(self.folder / "envs" / f"{name}.txt", self.wheels, *lines)

    def config(self, *names: str, extra: str = "") -> AppConfig:
        """The config with an environment for each of `names` (envs/NAME.txt)."""
        tables = "".join(f'[environments.{n}]\nrequirements = "envs/{n}.txt"\n' for n in names)
        path = self.folder / "autopilot.toml"
        path.write_text(tables + extra)
        return load_config(path, env={})


def make_project(folder: Path, wheels: Path) -> Project:
    folder.mkdir(parents=True, exist_ok=True)
    return Project(folder, wheels)
