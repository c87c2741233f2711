#!/usr/bin/env python3
"""Bootstrap and run: needs only python3 (3.11+).

    python3 dev.py demo        # a whole round against a local Numerai sandbox
    python3 dev.py test        # the whole test suite
    python3 dev.py bench ...   # the benchmark (bench/run.py), arguments passed on
    python3 dev.py autopilot ARGS...   # the CLI inside the project's environment

The first call creates `.venv/` and installs the project with the pinned versions in
`constraints.txt` (`demo` and `autopilot` what the service needs; `test` and `bench` the test
tools as well); later calls reinstall only when `pyproject.toml` or `constraints.txt` change.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".autopilot-installed"


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for name in ("pyproject.toml", "constraints.txt"):
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def ensure_env(extras: tuple[str, ...] = ()) -> None:
    """Create or update `.venv` so it holds the project with `extras`, as pinned."""
    if sys.version_info < (3, 11):
        sys.exit(f"numerai-autopilot needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    wanted = _fingerprint()
    stamp = STAMP.read_text().split() if STAMP.exists() else []
    have = set(stamp[1:]) if stamp[:1] == [wanted] else set()
    if not stamp[:1] == [wanted] or not set(extras) <= have:
        _install(wanted, tuple(sorted(have | set(extras))))
    _compile()


def _compile() -> None:
    """Byte-compile the project's source (0.06 s when up to date). Where PYTHONDONTWRITEBYTECODE
    is set, Python never writes it, and the server, each of its worker processes and each
    command compiled the project again at start: ~0.2 s of every cold start."""
    subprocess.run([str(BIN / "python"), "-m", "compileall", "-q", str(ROOT / "src")],
                   check=True, stdout=subprocess.DEVNULL)


def _install(wanted: str, extras: tuple[str, ...]) -> None:
    if not (BIN / "python").exists():
        print("creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    what = f"[{','.join(extras)}]" if extras else ""
    print(f"installing the project{what} with the versions pinned in constraints.txt "
          "(a minute or two the first time) ...", flush=True)
    pip = [str(BIN / "python"), "-m", "pip", "install", "--disable-pip-version-check",
           "--progress-bar", "on"]
    subprocess.run([*pip, "-c", str(ROOT / "constraints.txt"), "-e", f"{ROOT}{what}"],
                   check=True)
    STAMP.write_text(" ".join((wanted, *extras)))


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"demo", "test", "bench", "autopilot"}:
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    ensure_env(("dev",) if command in {"test", "bench"} else ())
    python = str(BIN / "python")
    if command == "demo":
        return subprocess.call([str(BIN / "autopilot"), "demo", *rest])
    if command == "autopilot":
        return subprocess.call([str(BIN / "autopilot"), *rest])
    if command == "bench":
        return subprocess.call([python, str(ROOT / "bench" / "run.py"), *rest])
    code = subprocess.call([python, "-m", "pytest", *rest], cwd=ROOT)
    if code == 5:
        print("pytest collected no tests: that is a failure here", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
