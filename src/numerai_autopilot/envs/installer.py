"""Installing into an environment: uv where it is on PATH, else pip, output streamed.

    installer = choose_installer()            # uv, this server's pip, or the env's own pip
    command = installer.install(env_python, ["-r", "envs/legacy.txt", "-c", "held.txt"])
    run_logged(command, log=print, cwd=folder, timeout_s=3600)  # InstallFailed on failure

This server's pip installs into the environment with `pip --python ENV_PYTHON` (pip 22.3+), so
environments need no pip of their own (`venv --without-pip` saves seconds a build).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.version import InvalidVersion, Version

TAIL_LINES = 20
# Credentials in index URLs (`https://user:token@host`) never reach a log or a record.
_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/\s@]+@", re.IGNORECASE)
_ERROR_LINE = re.compile(r"^\s*(error\b|×|╰─▶)", re.IGNORECASE)


class InstallFailed(Exception):
    """A command exited non-zero or timed out; `tail` holds its last output lines."""

    def __init__(self, reason: str, tail: Sequence[str]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.tail = list(tail)

    def summary(self) -> str:
        """The installer's error lines (else its last 3 lines), joined on one line."""
        errors = [line.strip() for line in self.tail if _ERROR_LINE.match(line)]
        lines = errors or [line.strip() for line in self.tail[-3:] if line.strip()]
        return " | ".join(lines) or self.reason


@dataclass(frozen=True)
class Installer:
    """How packages get into an environment: `name` ("uv" or "pip"), and whether the
    environment needs its own pip (`venv_with_pip`)."""

    name: str
    venv_with_pip: bool

    def install(self, python: Path, args: Sequence[str]) -> list[str]:
        """The command that installs `args` (pip install's arguments) into the environment
        whose interpreter is `python`."""
        if self.name == "uv":
            return [shutil.which("uv") or "uv", "pip", "install", "--python", str(python), *args]
        if self.venv_with_pip:
            return [str(python), "-m", "pip", "install", *args]
        return [sys.executable, "-m", "pip", "--python", str(python), "install", *args]


def choose_installer() -> Installer:
    """uv when on PATH; else this server's pip when it has `--python` (22.3+); else the
    environment's own pip (the venv is then made with pip, a few seconds more)."""
    if shutil.which("uv"):
        return Installer("uv", venv_with_pip=False)
    try:
        server_pip = Version(metadata.version("pip"))
    except (metadata.PackageNotFoundError, InvalidVersion):
        return Installer("pip", venv_with_pip=True)
    return Installer("pip", venv_with_pip=server_pip < Version("22.3"))


def redact(line: str) -> str:
    """`line` with credentials in URLs replaced by `****`."""
    return _CREDENTIALS.sub(r"\g<scheme>****@", line)


def run_logged(command: Sequence[str], *, log: Callable[[str], None], cwd: Path,
               timeout_s: float, label: str | None = None) -> None:
    """Run `command` in `cwd`, each output line (redacted) passed to `log` as it comes;
    `label` names it in errors (default: the program's name).

    :raises InstallFailed: it exited non-zero, could not start, or ran past `timeout_s` (it
        is then killed); with its last output lines.
    """
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1",
           "PIP_ROOT_USER_ACTION": "ignore", "PYTHONNOUSERSITE": "1"}
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    try:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, errors="replace")
    except OSError as exc:
        raise InstallFailed(f"{command[0]} could not start: {exc}", []) from exc
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        process.kill()

    timer = threading.Timer(timeout_s, kill)
    timer.start()
    try:
        assert process.stdout is not None
        for raw in process.stdout:
            line = redact(raw.rstrip())
            tail.append(line)
            log(line)
        code = process.wait()
    finally:
        timer.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
    if timed_out.is_set():
        raise InstallFailed(f"stopped after {timeout_s:.0f} s", tail)
    if code != 0:
        raise InstallFailed(f"{label or Path(command[0]).name} exited with {code}", tail)
