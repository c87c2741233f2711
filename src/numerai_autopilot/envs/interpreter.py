"""What an environment takes from the server's interpreter: which Python to build it with,
the server's package versions, and the `.pth` file that lets it import the server's packages.

    find_python("3.12")            # /usr/bin/python3.12, or EnvironmentBuildError naming it
    server_versions(HELD)          # {"dask": "2026.8.0", ...} as this server runs them
    overlay_pth()                  # the .pth text: the server's site-packages after the env's

Why an overlay: an environment with the server's Python imports numerai_autopilot, dask and
everything its requirements do not replace from the server's own site-packages, so building
one installs only what differs (a LightGBM 3.3 beside the server's 4.x), and the packages it
does install come first on sys.path.
"""

from __future__ import annotations

import platform
import shutil
import site
import subprocess
import sys
import sysconfig
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

from packaging.utils import canonicalize_name

import numerai_autopilot
from numerai_autopilot.errors import EnvironmentBuildError

# The packages every process of one Dask cluster must run at the same version: installed
# in an environment only at the server's versions (a constraints file), refused otherwise.
HELD = ("dask", "distributed", "cloudpickle", "msgpack")
# What a worker process of numerai-autopilot imports; an environment with another Python
# than the server's gets these at the server's versions (unless its requirements name them).
WORKER_NEEDS = (*HELD, "pandas", "pyarrow", "numpy", "threadpoolctl", "psutil", "numerai-tools")
PACKAGE = "numerai-autopilot"
_VERSION_TIMEOUT_S = 30.0


def server_python() -> str:
    """This interpreter's `major.minor`, e.g. "3.11"."""
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def find_python(requested: str | None) -> Path:
    """The interpreter to build an environment with: this one for None or this one's
    `major.minor`, else `pythonX.Y` on PATH.

    :raises EnvironmentBuildError: no `pythonX.Y` on PATH (the message names it).
    """
    if requested is None or requested == server_python():
        return Path(sys.executable)
    found = shutil.which(f"python{requested}")
    if found is None:
        raise EnvironmentBuildError(
            f"python = \"{requested}\" asks for python{requested}, which is not on PATH; "
            f"install Python {requested} on this machine, or remove `python` to use the "
            f"server's Python {server_python()}")
    return Path(found)


def python_version(python: Path) -> str:
    """The full version (`3.12.4`) of the interpreter at `python`.

    :raises EnvironmentBuildError: it does not run, or not within 30 s.
    """
    if python == Path(sys.executable):
        return platform.python_version()
    try:
        done = subprocess.run([str(python), "-c", "import platform; print(platform.python_version())"],
                              capture_output=True, text=True, timeout=_VERSION_TIMEOUT_S,
                              check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        raise EnvironmentBuildError(f"{python} does not run: {exc}") from exc
    return done.stdout.strip()


def server_versions(names: Iterable[str]) -> dict[str, str | None]:
    """Each of `names` (canonicalised) -> the version this server has installed, or None."""
    versions: dict[str, str | None] = {}
    for name in sorted({canonicalize_name(n) for n in names}):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def server_site_dirs() -> list[str]:
    """The server's site-packages folders (and the folder numerai_autopilot is imported
    from, when it is elsewhere, as when run from a source tree), existing ones only."""
    paths = sysconfig.get_paths()
    package_root = str(Path(numerai_autopilot.__file__).resolve().parent.parent)
    found: list[str] = []
    for folder in (*site.getsitepackages(), paths["purelib"], paths["platlib"], package_root):
        if Path(folder).is_dir() and folder not in found:
            found.append(folder)
    return found


def overlay_pth() -> str:
    """A `.pth` file's text that appends the server's site-packages to an environment's
    sys.path, after the environment's own, with their own `.pth` files processed (editable
    installs of numerai_autopilot live in one: a plain path line would skip them)."""
    lines = ["# written by `autopilot envs build`: the server's packages after its own"]
    lines += [f"import site; site.addsitedir({folder!r})" for folder in server_site_dirs()]
    return "\n".join(lines) + "\n"


def source_checkout() -> Path | None:
    """The project folder (pyproject.toml beside src/) when the server runs numerai_autopilot
    from a source checkout, else None."""
    package = Path(numerai_autopilot.__file__).resolve().parent
    root = package.parent.parent
    if package.parent.name == "src" and (root / "pyproject.toml").is_file():
        return root
    return None
