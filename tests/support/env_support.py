"""Helpers of the environment tests: a tiny pure-Python package, `autopilot_probe`, as wheels
of two versions built here (no network), requirements files that install them offline, and
predictors that say which version and interpreter they ran with."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

PROBE = "autopilot_probe"
PREDICTORS = Path(__file__).with_name("env_predictors.py")

_MODULE = '''"""A probe package: its version, and a model class only this package defines."""
import pandas as pd

__version__ = "{version}"


class Model:
    """A Model Upload-style callable: ranks of the first feature."""

    def __call__(self, live_features: pd.DataFrame) -> pd.DataFrame:
        first = [c for c in live_features.columns if c.startswith("feature_")][0]
        return live_features[first].astype("float32").rank(pct=True).to_frame("prediction")
'''


def write_wheel(folder: Path, name: str, version: str, source: str | None = None) -> Path:
    """Write a pure-Python wheel of `name` at `version` into `folder`; its module is
    `source`, or just sets `__version__`. Returns the wheel's path."""
    folder.mkdir(parents=True, exist_ok=True)
    module = name.replace("-", "_")
    info = f"{module}-{version}.dist-info"
    files = {
        f"{module}/__init__.py": (source or f'__version__ = "{version}"\n').encode(),
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                            .encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\n"
                         b"Tag: py3-none-any\n",
    }
    record = "".join(f"{path},sha256={_digest(data)},{len(data)}\n" for path, data in files.items())
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    path = folder / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for member, data in files.items():
            wheel.writestr(member, data)
    return path


def probe_wheel(folder: Path, version: str) -> Path:
    """`autopilot_probe` at `version`, with its `Model` class, as a wheel in `folder`."""
    return write_wheel(folder, PROBE, version, _MODULE.format(version=version))


def requirements(path: Path, wheels: Path, *lines: str) -> Path:
    """A requirements file installing `lines` from the folder `wheels` only (offline)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(["--no-index", f"--find-links {wheels}", *lines]) + "\n")
    return path


def probe(function: str) -> str:
    """A `file.py:function` reference into env_predictors.py."""
    return f"{PREDICTORS}:{function}"


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
