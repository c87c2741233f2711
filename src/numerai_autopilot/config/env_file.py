"""The `.env` file beside `autopilot.toml`: the secrets `autopilot init` makes, read by every
`autopilot` command that reads that config.

Lines are `NAME=value` (an `export ` before the name and quotes around the value are
accepted); `#` starts a comment. Variables set in the environment win over the file, an
empty one counting as unset. The file's values go into the config only, never into the
process's environment, so no child process (a Dask worker) inherits them.

    env = environment(Path("autopilot.toml"), os.environ)   # the file, then os.environ
    config = load_config(Path("autopilot.toml"), env=env)
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from numerai_autopilot.errors import ConfigError

ENV_FILE = ".env"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def env_file_of(config_path: Path) -> Path:
    """Where the `.env` file of the config at `config_path` is: in the same folder."""
    return config_path.absolute().parent / ENV_FILE


def read_env_file(path: Path) -> dict[str, str]:
    """The variables in `path`; {} when there is no such file.

    :raises ConfigError: the file cannot be read, or a line is not `NAME=value` (the error
        gives the line's number, never its text).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc}); fix it or remove it") from None
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.removeprefix("export ").partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not _NAME.match(name):
            raise ConfigError(f"{path}: line {number} is not NAME=value; fix it or remove it")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        else:
            value = value.split(" #", 1)[0].rstrip()
        values[name] = value
    return values


def environment(config_path: Path, process_env: Mapping[str, str]) -> dict[str, str]:
    """The variables a command with the config at `config_path` reads: its `.env` file's,
    then `process_env`'s (which win unless empty)."""
    values = read_env_file(env_file_of(config_path))
    values.update({name: value for name, value in process_env.items() if value})
    return values


def write_env_file(path: Path, values: Mapping[str, str], comment: str) -> None:
    """Write `values` (NAME -> value) under `comment` lines to `path`, readable by its owner
    only (mode 0600), replacing any file there."""
    lines = [f"# {line}" if line else "#" for line in comment.splitlines()]
    lines += [f"{name}={value}" for name, value in values.items()]
    path.unlink(missing_ok=True)  # a new file: an old one's wider mode does not carry over
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
