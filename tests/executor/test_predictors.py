"""parse_predictor checks references without running code; load_predictor loads them; a
job that cannot come back whole is refused when it is made."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import cloudpickle
import pandas as pd
import pytest

from numerai_autopilot.errors import ConfigError, PredictorError
from numerai_autopilot.executor import PredictJob, PredictorKind, load_predictor, parse_predictor

HERE = Path(__file__).parent


def _write_pickle(path: Path, two_args: bool) -> Path:
    if two_args:
        def predict(live_features: pd.DataFrame, live_benchmark_models: pd.DataFrame) -> object:
            return live_benchmark_models.iloc[:, 0].rank(pct=True)
    else:
        def predict(live_features: pd.DataFrame) -> object:  # type: ignore[misc]
            return live_features.iloc[:, 0].rank(pct=True)
    path.write_bytes(cloudpickle.dumps(predict))
    return path


def test_module_reference_is_parsed_without_importing() -> None:
    spec = parse_predictor("some_package_that_is_not_installed.models:predict", HERE)
    assert spec.kind is PredictorKind.MODULE
    assert spec.target == "some_package_that_is_not_installed.models"
    assert spec.function == "predict"
    assert spec.key == "module:some_package_that_is_not_installed.models:predict:"


def test_file_reference_resolves_relative_to_base_dir(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "alpha.py").write_text("def predict(x):\n    return x\n")
    spec = parse_predictor("models/alpha.py:predict", tmp_path)
    assert spec.kind is PredictorKind.FILE
    assert spec.target == str((tmp_path / "models" / "alpha.py").resolve())


def test_key_changes_when_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "alpha.py"
    path.write_text("def predict(x):\n    return x\n")
    spec = parse_predictor("alpha.py:predict", tmp_path)
    assert spec.refreshed() == spec
    path.write_text("def predict(x):\n    return x  # edited, longer\n")
    os.utime(path, ns=(1, 1))
    assert spec.refreshed().key != spec.key
    assert parse_predictor("alpha.py:predict", tmp_path).key == spec.refreshed().key


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("", "is empty"),
        ("justaname", "add ':function'"),
        ("mod:not-a-name", "not a valid function name"),
        ("some/dir:predict", "neither a dotted module name nor a .py file"),
        ("missing.py:predict", "not found; paths are relative to"),
        ("missing.pkl", "not found"),
    ],
)
def test_bad_references_name_the_reference_and_the_fix(
    tmp_path: Path, ref: str, expected: str
) -> None:
    with pytest.raises(ConfigError, match=expected):
        parse_predictor(ref, tmp_path)


def test_pickle_outside_allowed_dirs_is_refused(tmp_path: Path) -> None:
    allowed = tmp_path / "models"
    allowed.mkdir()
    outside = _write_pickle(tmp_path / "evil.pkl", two_args=False)
    with pytest.raises(ConfigError, match="outside the allowed pickle directories.*a pickle "
                                          "is code"):
        parse_predictor(str(outside), tmp_path, pickle_dirs=[allowed])
    with pytest.raises(ConfigError, match="outside the allowed"):
        parse_predictor("models/../evil.pkl", tmp_path, pickle_dirs=[allowed])
    # a symlink inside the allowed directory pointing outside is refused too
    (allowed / "link.pkl").symlink_to(outside)
    with pytest.raises(ConfigError, match="outside the allowed"):
        parse_predictor("models/link.pkl", tmp_path, pickle_dirs=[allowed])


def test_pickle_defaults_to_base_dir(tmp_path: Path) -> None:
    _write_pickle(tmp_path / "model.pkl", two_args=False)
    spec = parse_predictor("model.pkl", tmp_path)
    assert spec.kind is PredictorKind.PICKLE and spec.function is None
    with pytest.raises(ConfigError, match="outside"):
        parse_predictor(str(tmp_path / "model.pkl"), tmp_path / "elsewhere")


@pytest.mark.parametrize("two_args", [False, True])
def test_pickle_loads_and_reports_its_arguments(tmp_path: Path, two_args: bool) -> None:
    _write_pickle(tmp_path / "model.pkl", two_args=two_args)
    loaded = load_predictor(parse_predictor("model.pkl", tmp_path))
    assert loaded.wants_benchmarks is two_args


def test_file_predictor_does_not_take_a_plain_module_name(tmp_path: Path) -> None:
    (tmp_path / "json.py").write_text("def predict(live):\n    return live\n")
    loaded = load_predictor(parse_predictor("json.py:predict", tmp_path))
    import json

    assert sys.modules["json"] is json  # the stdlib module is not shadowed
    assert loaded.function.__module__.startswith("_autopilot_predictor_json_")
    assert str(tmp_path) not in sys.path


def test_file_predictor_may_import_its_sibling_helpers(tmp_path: Path) -> None:
    (tmp_path / "autopilot_helper_xyz.py").write_text("SCALE = 2\n")
    (tmp_path / "model.py").write_text(
        "import autopilot_helper_xyz\n\ndef predict(live):\n"
        "    return live * autopilot_helper_xyz.SCALE\n")
    loaded = load_predictor(parse_predictor("model.py:predict", tmp_path))
    assert loaded.function(3) == 6


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("predictors_fixture:nope", "has no attribute 'nope'; callables there: .*good"),
        ("predictors_fixture:NOT_CALLABLE", "int object is not callable"),
        ("not_installed_pkg_xyz:predict", "cannot import 'not_installed_pkg_xyz'"),
    ],
)
def test_load_errors_say_what_is_wrong(ref: str, expected: str) -> None:
    with pytest.raises(PredictorError, match=expected):
        load_predictor(parse_predictor(ref, HERE))


def test_too_many_arguments_is_refused(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("def predict(a, b, c):\n    return a\n")
    with pytest.raises(PredictorError, match="takes 3 required arguments"):
        load_predictor(parse_predictor("m.py:predict", tmp_path))


def test_a_file_that_raises_on_import_is_reported(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("raise RuntimeError('no GPU')\n")
    with pytest.raises(PredictorError, match="running m.py raised RuntimeError: no GPU"):
        load_predictor(parse_predictor("m.py:predict", tmp_path))


def test_unpicklable_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "broken.pkl").write_bytes(b"not a pickle")
    with pytest.raises(PredictorError, match="cannot unpickle broken.pkl"):
        load_predictor(parse_predictor("broken.pkl", tmp_path))


def test_a_job_in_an_environment_must_be_validated_on_its_worker(tmp_path: Path) -> None:
    # its predictions cannot come back as a frame pickled across two pandas versions
    spec = parse_predictor("predictors_fixture:good", HERE)
    with pytest.raises(ValueError, match="must be validated on its worker"):
        PredictJob("run-1", "alpha", spec, tmp_path / "live.arrow", environment="old")
    assert PredictJob("run-1", "alpha", spec, tmp_path / "live.arrow", environment="old",
                      validate_for=8).environment == "old"
