"""`[environments.NAME]`: a Python environment of its own for the models that name it.

    [environments.legacy]
    requirements = "envs/legacy.txt"   # relative to this file's folder; pin versions
    python = "3.11"                     # optional: an interpreter on this machine
    workers = 1                         # its Dask worker processes, started when needed
    idle_stop = "10m"                   # stopped after this long without a task (0: never)

    [models.old_model]
    predictor = "old_model.pkl"
    environment = "legacy"

`autopilot envs build` makes each one a virtualenv under `.autopilot/envs/NAME` beside the
config; its workers join the service's Dask scheduler and run only its models' tasks.
Models without `environment` run in the service's own environment, as before.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, field_validator

from numerai_autopilot.config.units import Duration

if TYPE_CHECKING:
    from numerai_autopilot.config.models import ModelConfig

# An environment's name becomes a folder and a Dask resource: letters, digits, - and _.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
# Where environments are built, relative to the config's folder.
ENVS_DIR = Path(".autopilot/envs")


class EnvironmentSettings(BaseModel):
    """`[environments.NAME]`; see the module docstring."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    requirements: Path
    python: str | None = None
    workers: int = Field(default=1, ge=1)
    idle_stop: Duration = 600.0

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"{value!r} cannot name an environment: use letters, digits, "
                             "'-' and '_' (it becomes a folder name)")
        return value

    @field_validator("python")
    @classmethod
    def _python(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"3\.\d{1,2}", value.strip()):
            raise ValueError(f"{value!r} is not a Python version; write e.g. \"3.11\"")
        return value.strip() if value else None


def name_environments(data: object) -> object:
    """The raw config `data` with each `[environments.NAME]` table given its `name`."""
    if not isinstance(data, dict) or not isinstance(data.get("environments"), dict):
        return data
    named = {name: {"name": name, **table} if isinstance(table, dict) else table
             for name, table in data["environments"].items()}
    return {**data, "environments": named}


def check_environments(models: Mapping[str, ModelConfig],
                       environments: Mapping[str, EnvironmentSettings]) -> None:
    """Raise ValueError naming the model and the fix when a model names an environment
    that is not configured, or when a blend names one (a blend runs no predictor)."""
    for name, model in models.items():
        if model.environment is None:
            continue
        if model.blend is not None:
            raise ValueError(f"models.{name}.environment: a blend runs no predictor; "
                             "remove environment")
        if model.environment not in environments:
            known = ", ".join(sorted(environments)) or "none configured"
            raise ValueError(
                f"models.{name}.environment: no [environments.{model.environment}] table "
                f"({known}); add one with requirements = \"envs/{model.environment}.txt\"")
