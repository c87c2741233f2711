"""What a build records in its environment's folder (`autopilot-env.json`), and what a build
depends on (`Inputs`): a build is redone only when these change.

    inputs = Inputs(requirements="<sha256>", python="3.11", versions={"dask": "2026.8.0"})
    write_record(folder, Record.ready(inputs, python="3.11.9", overlay=True, installer="pip"))
    read_record(folder)            # None when absent or unreadable (then: not built)
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

RECORD = "autopilot-env.json"


class EnvState(str, Enum):
    """An environment's state: `ready` (built from its current requirements), `missing`
    (never built), `stale` (built, but its inputs changed since), `failed` (the last build
    of its current requirements failed)."""

    READY = "ready"
    MISSING = "missing"
    STALE = "stale"
    FAILED = "failed"


@dataclass(frozen=True)
class Inputs:
    """What a build depends on: the requirements files' digest, the Python `major.minor`,
    and the server's versions of the packages that matter (held ones, numerai-autopilot,
    and those the requirements name)."""

    requirements: str
    python: str
    versions: dict[str, str | None]

    @property
    def hash(self) -> str:
        """sha256 of the inputs, stable across runs."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()

    def changes(self, before: Inputs, shown: str) -> list[str]:
        """What changed since `before`, as phrases: "envs/x.txt changed", "the server's
        dask changed (2026.7.0 -> 2026.8.0)"; `shown` names the requirements file."""
        found = []
        if self.requirements != before.requirements:
            found.append(f"{shown} changed")
        if self.python != before.python:
            found.append(f"its Python changed ({before.python} -> {self.python})")
        for name in sorted(set(self.versions) | set(before.versions)):
            old, new = before.versions.get(name), self.versions.get(name)
            if old != new:
                found.append(f"the server's {name} changed ({old or 'absent'} -> "
                             f"{new or 'absent'})")
        return found


@dataclass(frozen=True)
class Record:
    """One build's outcome: `state` ready or failed, the `inputs` it was built from (None
    when they could not be read), the interpreter's full version, and for a failure the
    `error` (one line) and the installer's last output lines."""

    state: EnvState
    inputs: Inputs | None
    built_at: str
    python: str | None = None
    overlay: bool = False  # the server's packages are importable after the env's own
    installer: str | None = None
    error: str | None = None
    log_tail: list[str] = field(default_factory=list)

    @classmethod
    def ready(cls, inputs: Inputs, *, python: str, overlay: bool, installer: str) -> Record:
        return cls(EnvState.READY, inputs, _now(), python, overlay, installer)

    def failed(self, inputs: Inputs | None, error: str, log_tail: list[str]) -> Record:
        """This record (the environment in place, if any) marked failed for `inputs`."""
        return replace(self, state=EnvState.FAILED, inputs=inputs, error=error,
                       log_tail=log_tail)

    @property
    def hash(self) -> str | None:
        return None if self.inputs is None else self.inputs.hash


def failed_record(inputs: Inputs | None, error: str, log_tail: list[str]) -> Record:
    """A failure with no environment in place."""
    return Record(EnvState.FAILED, inputs, _now(), error=error, log_tail=log_tail)


def read_record(folder: Path) -> Record | None:
    """The record in `folder`, or None when there is none or it cannot be read."""
    try:
        data: dict[str, Any] = json.loads((folder / RECORD).read_text(encoding="utf-8"))
        inputs = data.get("inputs")
        return Record(
            state=EnvState(data["state"]),
            inputs=None if inputs is None else Inputs(str(inputs["requirements"]),
                                                      str(inputs["python"]),
                                                      dict(inputs["versions"])),
            built_at=str(data["built_at"]), python=data.get("python"),
            overlay=bool(data.get("overlay")), installer=data.get("installer"),
            error=data.get("error"), log_tail=list(data.get("log_tail") or []))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_record(folder: Path, record: Record) -> None:
    """Write `record` into `folder` (whole or not at all: a temporary file renamed)."""
    data = {**asdict(record), "state": record.state.value, "hash": record.hash}
    temporary = folder / f".{RECORD}.tmp"
    temporary.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, folder / RECORD)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
