"""Reading requirements files as pip does (nested -r/-c files, continuations, markers,
per-requirement options), refusing Dask's held versions, and masking credentials."""

from __future__ import annotations

from pathlib import Path

import pytest

from numerai_autopilot.envs.installer import InstallFailed, redact
from numerai_autopilot.envs.requirements import read_requirements, refuse_held_conflicts
from numerai_autopilot.errors import EnvironmentBuildError


def test_nested_files_are_followed_and_hashed(tmp_path: Path) -> None:
    (tmp_path / "base.txt").write_text("pandas==2.2.3  # the 2024 model\n")
    (tmp_path / "pins.txt").write_text("dask==2024.1.0\n")
    top = tmp_path / "top.txt"
    top.write_text("--no-index\n-r base.txt\n--constraint=pins.txt\nlightgbm==3.3.5 \\\n"
                   "  --hash=sha256:abc\n./wheels/x-1.0-py3-none-any.whl\n"
                   "torch==2.0; python_version < '3'\n")
    files = read_requirements(top, shown="envs/top.txt")
    assert files.names() == {"pandas", "lightgbm"}  # dask only constrained; torch not here
    where = {line.requirement.name: (line.shown, line.number) for line in files.lines}
    assert where["pandas"] == ("envs/base.txt", 1) and where["lightgbm"] == ("envs/top.txt", 4)
    (tmp_path / "base.txt").write_text("pandas==2.2.2\n")
    assert read_requirements(top, shown="envs/top.txt").digest != files.digest


def test_a_missing_nested_file_names_the_line(tmp_path: Path) -> None:
    top = tmp_path / "top.txt"
    top.write_text("\n-r gone.txt\n")
    with pytest.raises(EnvironmentBuildError, match=r"envs/gone.txt does not exist .*"
                                                    r"named on envs/top.txt line 2"):
        read_requirements(top, shown="envs/top.txt")


def test_held_packages_are_refused_only_when_the_servers_version_is_excluded(
    tmp_path: Path,
) -> None:
    path = tmp_path / "r.txt"
    path.write_text("Distributed>=2026.1\ncloudpickle\nmsgpack<1\n")
    files = read_requirements(path, shown="envs/r.txt")
    held = {"distributed": "2026.8.0", "cloudpickle": "3.1.3", "msgpack": "1.2.4"}
    with pytest.raises(EnvironmentBuildError) as refused:
        refuse_held_conflicts(files, held)
    assert str(refused.value).startswith("envs/r.txt line 3 asks for 'msgpack<1', but the "
                                         "server runs msgpack 1.2.4")
    assert "distributed" not in str(refused.value).split("(")[0]


def test_credentials_in_urls_never_reach_a_log() -> None:
    line = "Looking in indexes: https://user:s3cret@pypi.example.com/simple, https://tok@x.io"
    assert "s3cret" not in redact(line) and "tok@" not in redact(line)
    assert redact(line).count("****@") == 2
    failed = InstallFailed("pip exited with 1", ["Collecting x", "ERROR: no x", "ERROR: done"])
    assert failed.summary() == "ERROR: no x | ERROR: done"
