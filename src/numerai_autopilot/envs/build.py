"""Building an environment: a virtualenv with its requirements, switched in whole.

    result = build(config, "legacy", log=print)   # BuildResult(built=True, python="3.11.9")
    build(config, "legacy")                       # built=False: up to date, nothing done

Each build goes into a new folder `.autopilot/envs/legacy.<id>`; only when it is complete is
the link `.autopilot/envs/legacy` switched to it (an atomic rename), and the previous build
removed. A worker never sees half an environment; one started before a rebuild keeps the
files it already imported. A failed build leaves the environment in place as it was and
records the failure in it, so `check` reports it with the fix.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from numerai_autopilot.config import ENVS_DIR, AppConfig, EnvironmentSettings
from numerai_autopilot.envs.installer import Installer, InstallFailed, choose_installer, run_logged
from numerai_autopilot.envs.interpreter import (
    HELD,
    PACKAGE,
    WORKER_NEEDS,
    find_python,
    overlay_pth,
    python_version,
    server_python,
    server_versions,
    source_checkout,
)
from numerai_autopilot.envs.record import (
    EnvState,
    Inputs,
    Record,
    failed_record,
    read_record,
    write_record,
)
from numerai_autopilot.envs.requirements import RequirementsFiles, refuse_held_conflicts
from numerai_autopilot.envs.status import env_dir, inputs_for, settings_of
from numerai_autopilot.errors import EnvironmentBuildError

# One installer command may take this long (a torch wheel on a slow link) before it is killed.
INSTALL_TIMEOUT_S = 3600.0
CONSTRAINTS = "autopilot-constraints.txt"
OVERLAY = "_autopilot_server.pth"


@dataclass(frozen=True)
class BuildResult:
    """A build's outcome: the environment's folder and Python, whether anything was built
    (False: it was up to date) and how long it took."""

    name: str
    path: Path
    python: str | None
    built: bool
    seconds: float


def build(config: AppConfig, name: str, *, force: bool = False,
          log: Callable[[str], None] = print) -> BuildResult:
    """Build environment `name` unless it is built from its current inputs (or `force`).

    :param log: receives progress and the installer's output, a line at a time.
    :raises ConfigError: `name` is not configured.
    :raises EnvironmentBuildError: the interpreter is missing, the requirements are missing
        or refused, or the installer failed: "environment 'NAME' failed to build: WHAT; FIX;
        then run `autopilot envs build NAME`". The failure is recorded (`check` reports it)
        and the environment in place, if any, is left as it was.
    """
    settings = settings_of(config, name)
    root = config.resolve_path(ENVS_DIR)
    root.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with _locked(root / f".{name}.lock"):
        link = env_dir(config, name)
        inputs: Inputs | None = None
        target = root / f"{name}.{secrets.token_hex(4)}"
        try:
            inputs, files = inputs_for(config, settings)
            record = read_record(link)
            if (not force and record is not None and record.state is EnvState.READY
                    and record.hash == inputs.hash and (link / "bin" / "python").exists()):
                log(f"environment {name!r} is up to date (Python {record.python}, built "
                    f"{record.built_at}); `--force` rebuilds it")
                return BuildResult(name, link, record.python, False, time.monotonic() - started)
            _remove_leftovers(root, name, keep=link.resolve() if link.is_symlink() else None)
            try:
                record = _build_into(target, config, settings, inputs, files, log)
            except OSError as exc:  # disk full, permissions: a failure to record like others
                raise EnvironmentBuildError(f"cannot write {target}: {exc}") from exc
        except EnvironmentBuildError as exc:
            shutil.rmtree(target, ignore_errors=True)
            error = f"{exc}; then run `autopilot envs build {name}`"
            tail = exc.__cause__.tail if isinstance(exc.__cause__, InstallFailed) else []
            _record_failure(link, inputs, error, tail)
            raise EnvironmentBuildError(f"environment {name!r} failed to build: {error}") from exc
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
        _switch(link, target)
    seconds = time.monotonic() - started
    log(f"environment {name!r} built in {seconds:.1f} s (Python {record.python})")
    return BuildResult(name, link, record.python, True, seconds)


def _build_into(target: Path, config: AppConfig, settings: EnvironmentSettings, inputs: Inputs,
                files: RequirementsFiles, log: Callable[[str], None]) -> Record:
    """Make the environment in `target`: venv, overlay or worker packages, requirements.

    :raises EnvironmentBuildError: WHAT; FIX (without the environment's name).
    """
    name = settings.name
    shown = settings.requirements.as_posix()
    held = {n: v for n, v in server_versions(HELD).items() if v is not None}
    refuse_held_conflicts(files, held)
    base = find_python(settings.python)
    version = python_version(base)
    overlay = inputs.python == server_python()  # then `base` is this very interpreter
    installer = choose_installer()
    folder = config.base_dir.resolve()

    def run(command: list[str], what: str, label: str = installer.name) -> None:
        log(f"environment {name!r}: {what}")
        try:
            run_logged(command, log=log, cwd=folder, timeout_s=INSTALL_TIMEOUT_S, label=label)
        except InstallFailed as exc:
            fix = f"; fix {shown}" if label == installer.name else ""
            raise EnvironmentBuildError(
                f"{what} failed ({exc.reason}): {exc.summary()}{fix}") from exc

    venv = [str(base), "-m", "venv", *([] if installer.venv_with_pip else ["--without-pip"]),
            str(target)]
    run(venv, f"creating a virtualenv with Python {version}", "venv")
    python = target / "bin" / "python"
    site_packages = next(target.glob("lib/python*/site-packages"), None)
    if site_packages is None:
        raise EnvironmentBuildError(f"`{base} -m venv` made no lib/pythonX.Y/site-packages in "
                                    f"{target}")
    constraints = target / CONSTRAINTS
    constraints.write_text("".join(f"{n}=={v}\n" for n, v in sorted(held.items())),
                           encoding="utf-8")
    requirements = ["-r", str(config.resolve_path(settings.requirements).resolve()),
                    "-c", str(constraints)]
    if overlay:
        # Before installing: the installer then sees the server's packages and installs only
        # what the requirements need at other versions (pip; uv installs all they need).
        (site_packages / OVERLAY).write_text(overlay_pth(), encoding="utf-8")
        run(installer.install(python, requirements), f"installing {shown} ({installer.name})")
    else:
        _install_worker_side(run, installer, python, requirements, files.names())
    record = Record.ready(inputs, python=version, overlay=overlay, installer=installer.name)
    write_record(target, record)
    return record


def _install_worker_side(run: Callable[[list[str], str], None], installer: Installer,
                         python: Path, requirements: list[str], named: set[str]) -> None:
    """Another Python than the server's: the requirements with what a worker imports, at the
    server's versions (those the requirements name excepted), and numerai-autopilot itself
    from the server's source checkout.

    :raises EnvironmentBuildError: the server does not run from a source checkout.
    """
    project = source_checkout()
    if project is None:
        raise EnvironmentBuildError(
            "another Python than the server's needs numerai-autopilot installed from its "
            "source, and this server does not run from a source checkout; remove `python` to "
            "use the server's Python, or run the server from a checkout")
    pins = [f"{n}=={v}" for n, v in server_versions(WORKER_NEEDS).items()
            if v is not None and n not in named]
    run(installer.install(python, [*requirements, *pins]),
        f"installing the requirements and the worker's packages ({installer.name})")
    run(installer.install(python, ["--no-deps", str(project)]), f"installing {PACKAGE}")


def _record_failure(link: Path, inputs: Inputs | None, error: str, tail: list[str]) -> None:
    """Record a failed build in the environment in place (its files untouched), or, when
    there is none, in a folder of its own that `link` points to."""
    current = read_record(link) if link.is_dir() else None
    if current is not None:
        write_record(link, current.failed(inputs, error, tail))
        return
    if link.is_dir():
        write_record(link, failed_record(inputs, error, tail))
        return
    target = link.parent / f"{link.name}.{secrets.token_hex(4)}"
    target.mkdir()
    write_record(target, failed_record(inputs, error, tail))
    _switch(link, target)


def _switch(link: Path, target: Path) -> None:
    """Point `link` at `target` (a sibling) in one rename; remove what it pointed at."""
    previous = link.resolve() if link.is_symlink() else None
    if link.exists() and not link.is_symlink():  # a folder from elsewhere: cannot be swapped
        shutil.rmtree(link)
    staged = link.parent / f".{link.name}.link"
    staged.unlink(missing_ok=True)
    os.symlink(target.name, staged)  # relative: the envs folder may move (an image build)
    os.replace(staged, link)
    if previous is not None and previous != target.resolve():
        shutil.rmtree(previous, ignore_errors=True)


def _remove_leftovers(root: Path, name: str, keep: Path | None) -> None:
    """Remove `NAME.*` folders of interrupted builds (never the one in use, `keep`)."""
    for folder in root.glob(f"{name}.*"):
        if folder.is_dir() and not folder.is_symlink() and folder.resolve() != keep:
            shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path`: two builds of one environment take turns."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
