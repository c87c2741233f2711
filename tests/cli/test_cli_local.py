"""`autopilot init`, `run`, `runs` and `webhook-url` as a user runs them (real processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from numerai_autopilot.config import read_env_file, webhook_token, webhook_url
from numerai_autopilot.ledger import Ledger, NewRun, RunState
from numerai_autopilot.sandbox.testing import RunningSandbox

SECRET = "cli-test-webhook-secret-7b3e9d1f5a2c8460"


def autopilot(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "numerai_autopilot", *args],
        cwd=cwd, env={**os.environ, "COLUMNS": "200", **(env or {})},
        capture_output=True, text=True, timeout=240, check=False,
    )


@pytest.fixture
def project(tmp_path: Path, sandbox: RunningSandbox) -> tuple[Path, dict[str, str]]:
    """`autopilot init`, pointed at the sandbox and the sandbox's model `alpha`."""
    done = autopilot("init", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "autopilot.toml").exists() and (tmp_path / "predictors/example.py").exists()
    config = (tmp_path / "autopilot.toml").read_text().replace("[models.my_model]", "[models.alpha]")
    commented = '# api_url = "http://127.0.0.1:8700"'
    assert commented in config  # a user uncomments it to try the sandbox
    (tmp_path / "autopilot.toml").write_text(
        config.replace(commented, f'api_url = "{sandbox.url}"'))
    env = {"NUMERAI_PUBLIC_ID": sandbox.public_id, "NUMERAI_SECRET_KEY": sandbox.secret_key}
    return tmp_path, env


def test_init_refuses_to_overwrite(project: tuple[Path, dict[str, str]]) -> None:
    directory, _ = project
    again = autopilot("init", cwd=directory)
    assert again.returncode == 2 and "pass --force" in again.stderr


def test_run_dry_run_writes_validated_csv_and_uploads_nothing(
    project: tuple[Path, dict[str, str]], sandbox: RunningSandbox
) -> None:
    directory, env = project
    done = autopilot("run", "alpha", "--dry-run", cwd=directory, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    round_number = sandbox.state()["current_rounds"]["8"]["number"]
    csv = directory / "predictions" / f"alpha-round{round_number}.csv"
    frame = pd.read_csv(csv)
    assert list(frame.columns) == ["id", "prediction"] and len(frame) == 500
    assert sandbox.submissions() == []
    assert "dry run" in done.stdout
    assert env["NUMERAI_SECRET_KEY"] not in done.stdout + done.stderr


def test_run_submits_and_runs_lists_it(project: tuple[Path, dict[str, str]], sandbox: RunningSandbox) -> None:
    directory, env = project
    sandbox.set_faults(operations={"download": {"latency_ms": 2000}})  # the model loads meanwhile
    done = autopilot("run", "alpha", cwd=directory, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    (sub,) = sandbox.submissions()
    ledger = Ledger.from_url(f"sqlite:///{directory / '.autopilot/ledger.db'}")
    (run,) = ledger.runs()
    assert run.state is RunState.SUBMITTED and run.submission_id == sub["id"]
    assert run.source == "manual"
    listed = autopilot("runs", cwd=directory, env={**env, "COLUMNS": "80"})
    assert listed.returncode == 0, listed.stderr
    assert max(map(len, listed.stdout.splitlines())) <= 80, listed.stdout
    assert f"{run.id[:8]} " in listed.stdout and "submitted" in listed.stdout
    as_json = autopilot("runs", "--json", cwd=directory, env=env)
    [listed_run] = json.loads(as_json.stdout)
    assert listed_run["id"] == run.id and listed_run["submission_id"] == sub["id"]
    assert listed_run["state"] == "submitted" and listed_run["rows"] == 500
    # where the time and the memory went, per run: which model to slim down
    assert listed_run["predict_s"] > 0 and listed_run["compute_s"] >= 0
    assert listed_run["load_s"] > 0  # loaded in this run's fresh worker
    assert run.detail["data_wait_s"] > 0  # ... while the round's data downloaded
    assert 50 < listed_run["peak_mb"] < 4096 and listed_run["model_mb"] >= 0
    header, row = listed.stdout.splitlines()[:2]
    assert "memory" in header and f"{listed_run['peak_mb']:.0f}M" in row
    # A second manual run of the same round is skipped, not submitted twice.
    again = autopilot("run", "alpha", cwd=directory, env=env)
    assert again.returncode == 0 and "skipped" in again.stdout
    assert len(sandbox.submissions()) == 1


def test_webhook_url_resolves_the_model_by_name(project: tuple[Path, dict[str, str]], sandbox: RunningSandbox) -> None:
    directory, env = project
    done = autopilot("webhook-url", "alpha", "--base-url", "https://example.run.app/", cwd=directory, env=env)
    assert done.returncode == 0, done.stderr
    secret = read_env_file(directory / ".env")["AUTOPILOT_SECRET"]  # what `init` made
    model_id = sandbox.models["alpha"]
    assert done.stdout.strip() == (
        f"https://example.run.app/pred/{model_id}/{webhook_token(secret, model_id)}")


def test_errors_are_one_clear_line(tmp_path: Path) -> None:
    missing = autopilot("runs", "-c", str(tmp_path / "nope.toml"), cwd=tmp_path)
    assert missing.returncode == 2 and "autopilot init" in missing.stderr
    assert "Traceback" not in missing.stderr
    (tmp_path / "bad.toml").write_text("[models.a]\npredictor = 'x.py:f'\ntimeout = 'ten'\n")
    bad = autopilot("run", "a", "-c", str(tmp_path / "bad.toml"), cwd=tmp_path)
    assert bad.returncode == 2 and "models.a.timeout" in bad.stderr
    (tmp_path / "good.toml").write_text("[models.a]\npredictor = 'x.py:f'\n")
    unknown = autopilot("run", "zzz", "-c", str(tmp_path / "good.toml"), cwd=tmp_path)
    assert unknown.returncode == 2 and "no model named 'zzz' (configured: a)" in unknown.stderr


def test_runs_fit_80_columns_with_unique_ids_and_errors_under_the_table(tmp_path: Path) -> None:
    (tmp_path / "autopilot.toml").write_text(
        "[models.a_model_with_a_long_name]\npredictor = 'x.py:f'\n")
    ledger = Ledger.from_url(f"sqlite:///{tmp_path / '.autopilot/ledger.db'}")
    ledger.migrate()
    error = "predictor raised ValueError: bad\n  File \"x.py\", line 3, in f\n    raise ValueError('bad')"
    ids = []
    for i in range(2):
        run, _ = ledger.record(NewRun("a_model_with_a_long_name", "m-1", tournament=11,
                                      round_number=1100 + i, trigger_id=f"t-{i}",
                                      data_version="v2.1", is_test=False, source="manual"))
        claimed = ledger.claim_run(run.id, "me")
        assert claimed is not None
        ledger.advance(run.id, RunState.FAILED, owner="me", error=error)
        ids.append(run.id)
    listed = autopilot("runs", cwd=tmp_path, env={"COLUMNS": "80"})
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert max(map(len, lines)) <= 80, listed.stdout
    assert "signals 1100" in listed.stdout and "a_model_with_a_long_name" in listed.stdout
    assert listed.stdout.count("raise ValueError('bad')") == 2  # whole, under the table
    assert "─" not in listed.stdout and "\x1b[" not in listed.stdout  # piped: plain text


def test_a_long_model_name_is_folded_whole_not_cut_at_80_columns(tmp_path: Path) -> None:
    name = "a_model_with_a_rather_long_name_v2"
    (tmp_path / "autopilot.toml").write_text(f"[models.{name}]\npredictor = 'x.py:f'\n")
    with Ledger.from_url(f"sqlite:///{tmp_path / '.autopilot/ledger.db'}") as ledger:
        ledger.migrate()
        run, _ = ledger.record(NewRun(name, "m-1", tournament=11, round_number=1100,
                                      trigger_id="t-1", data_version="v2.1", is_test=False,
                                      source="manual"))
        assert ledger.claim_run(run.id, "me") is not None
        for state in (RunState.DOWNLOADING, RunState.PREDICTING, RunState.VALIDATING,
                      RunState.UPLOADING):
            ledger.advance(run.id, state, owner="me")
        ledger.advance(run.id, RunState.SUBMITTED, owner="me", submission_id="sub-1",
                       detail={"rows": 123456, "peak_mb": 2345.6})
    listed = autopilot("runs", cwd=tmp_path, env={"COLUMNS": "80"})
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert max(map(len, lines)) <= 80 and "…" not in listed.stdout, listed.stdout
    assert lines[0].split() == ["run", "model", "round", "state", "predict", "memory", "total",
                                "rows"]
    assert lines[1].split()[0] == run.id[:8] and "signals 1100" in lines[1]
    assert "123456" in lines[1] and "2.3G" in lines[1]
    model_column = lines[0].index("model")
    folded = "".join(line[model_column:].split()[0] for line in lines[1:] if line.strip())
    assert folded == name, listed.stdout


def test_a_predictors_error_is_said_once_with_the_users_frames_first(
    project: tuple[Path, dict[str, str]], sandbox: RunningSandbox
) -> None:
    directory, env = project
    with (directory / "predictors/example.py").open("a") as module:
        module.write("\n\ndef _pick(frame):\n    return frame.loc[:, ['missing_column']]\n\n\n"
                     "def broken(live_features):\n    return _pick(live_features)\n")
    config = directory / "autopilot.toml"
    config.write_text(config.read_text().replace("example.py:predict", "example.py:broken"))
    done = autopilot("run", "alpha", cwd=directory, env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    output = done.stdout + done.stderr
    assert output.count("predictor raised KeyError") == 1, output
    assert "Compute Failed" not in output
    user_frame = output.index("in broken")
    assert user_frame < output.index("in _pick") < output.index("frames in pandas)")
    assert "site-packages" not in output
    assert sandbox.submissions() == []


def test_version_and_webhook_url_from_the_configs_public_url(tmp_path: Path) -> None:
    version = autopilot("--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("numerai-autopilot ")
    text = (f"[server]\nsecret = '{SECRET}'\npublic_url = 'https://x.run.app'\n"
            "[models.a]\nmodel_id = 'm-1'\npredictor = 'x.py:f'\n")
    (tmp_path / "autopilot.toml").write_text(text)
    done = autopilot("webhook-url", "a", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == webhook_url("https://x.run.app", "m-1", SECRET)
    (tmp_path / "autopilot.toml").write_text(text.replace("public_url", "# public_url"))
    missing = autopilot("webhook-url", "a", cwd=tmp_path)
    assert missing.returncode == 2 and "--base-url" in missing.stderr


def test_paths_follow_the_config_file_not_the_current_folder(tmp_path: Path) -> None:
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    (project / "autopilot.toml").write_text("[models.a]\npredictor = 'x.py:f'\n")
    listed = autopilot("runs", "-c", "../project/autopilot.toml", cwd=elsewhere)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.strip() == "no runs yet"
    assert list(elsewhere.iterdir()) == []  # nothing created where the command ran
    assert (project / ".autopilot" / "ledger.db").exists()
