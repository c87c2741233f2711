"""The CLI as a new user meets it (issue 25): `runs` ids that `logs` accepts, `logs` and
`status` from the local ledger when no server answers, `serve` on a port in use, dry runs,
pickle folders, the wrong-keys message and `doctor`'s predictor line. Real processes, real
SQLite, the sandbox over real HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import cloudpickle
import pandas as pd
import pytest

from numerai_autopilot.ledger import Ledger, NewRun, RunState, own_trigger_id
from numerai_autopilot.sandbox.testing import RunningSandbox, free_port

SECRET = "cli-test-webhook-secret-0123456789abcdef"


def autopilot(*args: str, cwd: Path, env: dict[str, str] | None = None,
              columns: int = 200) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "numerai_autopilot", *args],
        cwd=cwd, env={**os.environ, "COLUMNS": str(columns), **(env or {})},
        capture_output=True, text=True, timeout=240, check=False,
    )


def _config(folder: Path, port: int, extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "autopilot.toml"
    path.write_text(f"[server]\nport = {port}\n{extra}"
                    "[models.a_model_with_a_long_name]\npredictor = 'x.py:f'\n")
    return path


def _record(folder: Path, count: int) -> list[str]:
    """`count` runs in the config folder's ledger, each with a log line naming its id."""
    with Ledger.from_url(f"sqlite:///{folder / '.autopilot/ledger.db'}") as ledger:
        ledger.migrate()
        ids = []
        for i in range(count):
            run, _ = ledger.record(NewRun("a_model_with_a_long_name", "m-1", tournament=8,
                                          round_number=1100 + i, trigger_id=f"t-{i}",
                                          data_version="v5.3", is_test=False, source="manual"))
            ledger.log(run.id, "info", f"hello from run {run.id}")
            ids.append(run.id)
    return ids


def test_runs_at_80_columns_shows_id_starts_that_logs_accepts_without_a_server(
    tmp_path: Path,
) -> None:
    port = free_port()  # nothing listens there: `logs` reads the ledger
    _config(tmp_path, port)
    ids = _record(tmp_path, 17)  # 17 uuid4 ids: two share their first hex digit
    listed = autopilot("runs", cwd=tmp_path, columns=80)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert max(map(len, lines)) <= 80, listed.stdout
    shown = [line.split()[0] for line in lines[1:] if line.strip()]
    assert len(shown) == 17
    for prefix in shown:  # each a whole, unique start of exactly one id
        assert sum(run_id.startswith(prefix) for run_id in ids) == 1, prefix
    for prefix in shown[:2]:
        full = next(run_id for run_id in ids if run_id.startswith(prefix))
        logs = autopilot("logs", prefix, cwd=tmp_path)
        assert logs.returncode == 0, logs.stderr
        assert f"hello from run {full}" in logs.stdout
        [note] = logs.stderr.splitlines()  # said once, on stderr
        assert note.startswith(f"no server answers at http://127.0.0.1:{port}: reading the "
                               "local ledger sqlite:///"), note
        assert note.endswith(str(tmp_path / ".autopilot/ledger.db")), note
    shared, count = Counter(run_id[0] for run_id in ids).most_common(1)[0]
    ambiguous = autopilot("logs", shared, cwd=tmp_path)
    assert ambiguous.returncode == 1
    assert f"run id '{shared}' is the start of {count} runs' ids" in ambiguous.stderr
    unknown = autopilot("logs", "zzzz", cwd=tmp_path)
    assert unknown.returncode == 1 and "no run 'zzzz' in the local ledger" in unknown.stderr


def test_status_reads_the_ledger_without_a_server_and_server_reaches_only_that_one(
    tmp_path: Path,
) -> None:
    port = free_port()
    _config(tmp_path, port)
    [run_id] = _record(tmp_path, 1)
    status = autopilot("status", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert run_id[:8] in status.stdout and "queued" in status.stdout
    assert "reading the local ledger" in status.stderr and len(status.stderr.splitlines()) == 1
    as_json = autopilot("status", "--json", cwd=tmp_path)
    assert as_json.returncode == 0 and '"state": "queued"' in as_json.stdout
    remote = autopilot("status", "--server", f"http://127.0.0.1:{port}", cwd=tmp_path)
    assert remote.returncode == 1 and "no server answers" in remote.stderr
    assert "local ledger" not in remote.stderr and run_id[:8] not in remote.stdout


def test_status_shows_a_rounds_own_run_not_a_later_dry_run(tmp_path: Path) -> None:
    _config(tmp_path, free_port())
    [run_id] = _record(tmp_path, 1)  # Numerai's run of round 1100, queued
    with Ledger.from_url(f"sqlite:///{tmp_path / '.autopilot/ledger.db'}") as ledger:
        dry, _ = ledger.record(NewRun("a_model_with_a_long_name", "m-1", tournament=8,
                                      round_number=1100, trigger_id=own_trigger_id("dry-run"),
                                      data_version="v5.3", is_test=False, source="dry-run",
                                      resubmit=True))
        assert ledger.claim_run(dry.id, "cli") is not None
        ledger.advance(dry.id, RunState.DRY_RUN, owner="cli", detail={"dry_run": "/x.csv"})
    status = autopilot("status", cwd=tmp_path, columns=80)
    assert status.returncode == 0, status.stderr
    header, row, *rest = status.stdout.splitlines()
    assert header.split() == ["run", "model", "round", "state"]  # no empty figure columns
    assert row.split() == [run_id[:8], "a_model_with_a_long_name", "1100", "queued"]
    assert rest == [] and dry.id[:8] not in status.stdout
    listed = autopilot("runs", cwd=tmp_path, columns=80)  # `runs` lists every run
    assert dry.id[:8] in listed.stdout and "dry-run" in listed.stdout


def test_serve_on_a_port_in_use_says_so_in_one_line_before_anything_else(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path, 8000)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        served = autopilot("serve", "-c", str(config), "--port", str(port), cwd=tmp_path)
        from_env = autopilot("serve", "-c", str(config), cwd=tmp_path, env={"PORT": str(port)})
        as_json = autopilot("serve", "-c", str(config), "--port", str(port), "--log-format",
                            "json", cwd=tmp_path)
    for done in (served, from_env):
        assert done.returncode == 2, done.stdout + done.stderr
        assert done.stdout == ""
        [line] = done.stderr.splitlines()
        assert f"port {port} on 127.0.0.1 is already in use" in line
        assert "--port" in line and "$PORT" in line and "Traceback" not in line
    assert as_json.returncode == 2, as_json.stdout + as_json.stderr
    [entry] = [json.loads(line) for line in (as_json.stdout + as_json.stderr).splitlines()]
    assert entry["severity"] == "ERROR" and f"port {port} on 127.0.0.1" in entry["message"]
    assert "--port or $PORT" in entry["message"]


def _write_pickle(path: Path) -> None:
    def predict(live_features: pd.DataFrame) -> pd.DataFrame:
        features = [c for c in live_features.columns if c.startswith("feature_")]
        return (live_features[features].astype("float32").mean(axis=1).rank(pct=True)
                .to_frame("prediction"))

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cloudpickle.dumps(predict))


def _sandbox_project(tmp_path: Path, sandbox: RunningSandbox, extra: str
                     ) -> tuple[Path, dict[str, str]]:
    project = tmp_path / "project"
    project.mkdir()
    (project / "autopilot.toml").write_text(
        f'[numerai]\napi_url = "{sandbox.url}"\n[server]\n'
        f"port = {free_port()}\n[executor]\nworkers = 1\nmemory_limit = \"2GiB\"\n{extra}")
    env = {"NUMERAI_PUBLIC_ID": sandbox.public_id, "NUMERAI_SECRET_KEY": sandbox.secret_key,
           "AUTOPILOT_SECRET": SECRET}
    return project, env


@pytest.mark.timeout(300)
def test_a_dry_run_is_recorded_as_one_from_a_named_pickle_folder_and_is_no_round(
    tmp_path: Path, sandbox: RunningSandbox
) -> None:
    _write_pickle(tmp_path / "shared-models" / "alpha.pkl")
    model = '[models.alpha]\npredictor = "../shared-models/alpha.pkl"\n'
    project, env = _sandbox_project(tmp_path, sandbox, model)
    refused = autopilot("run", "alpha", "--dry-run", cwd=project, env=env)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "outside the allowed pickle directories" in refused.stderr
    assert "executor.pickle_dirs" in refused.stderr
    config = project / "autopilot.toml"
    config.write_text(config.read_text().replace(
        "[executor]\n", '[executor]\npickle_dirs = ["../shared-models"]\n'))

    dry = autopilot("run", "alpha", "--dry-run", cwd=project, env=env)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "dry-run" in dry.stdout and sandbox.submissions() == []
    ledger = Ledger.from_url(f"sqlite:///{project / '.autopilot/ledger.db'}")
    [run] = ledger.runs()
    assert run.state is RunState.DRY_RUN and run.source == "dry-run" and run.error is None
    assert run.detail["rows"] == 500 and Path(run.detail["dry_run"]).is_file()
    assert "uploading" not in [s.state.value for s in ledger.stages(run.id)]

    # the round is still to submit; from another folder, its data and ledger stay the project's
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    real = autopilot("run", "alpha", "-c", "../project/autopilot.toml", cwd=elsewhere, env=env)
    assert real.returncode == 0, real.stdout + real.stderr
    assert list(elsewhere.iterdir()) == []
    assert (project / ".autopilot" / "data").is_dir()
    assert len(sandbox.submissions()) == 1
    states = sorted(r.state.value for r in ledger.runs())
    assert states == ["dry-run", "submitted"]
    ledger.close()


def test_refused_keys_name_the_environment_variables(tmp_path: Path,
                                                    sandbox: RunningSandbox) -> None:
    project, env = _sandbox_project(tmp_path, sandbox,
                                    '[models.alpha]\npredictor = "x.py:f"\n')
    wrong = {**env, "NUMERAI_SECRET_KEY": "not-the-secret-key"}
    done = autopilot("webhook-url", "alpha", "--base-url", "https://x.run.app", cwd=project,
                     env=wrong)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "refused the API keys" in done.stderr
    assert "NUMERAI_PUBLIC_ID and NUMERAI_SECRET_KEY" in done.stderr
    assert "not-the-secret-key" not in done.stdout + done.stderr


@pytest.mark.timeout(300)
def test_doctor_names_the_model_and_the_predictor_once(tmp_path: Path,
                                                       sandbox: RunningSandbox) -> None:
    models = ('[models.alpha]\npredictor = "broken.py:predict"\n'
              '[models.beta]\npredictor = "fine.py:predict"\n')
    project, env = _sandbox_project(tmp_path, sandbox, models)
    (project / "broken.py").write_text("raise ImportError('no lightgbm here')\n")
    (project / "fine.py").write_text("def predict(live_features):\n    return None\n")
    done = autopilot("doctor", cwd=project, env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    [broken] = [line for line in done.stdout.splitlines() if "predictor alpha" in line]
    assert broken.startswith("FAIL predictor alpha: ") and "no lightgbm here" in broken
    assert broken.count("broken.py:predict") == 1 and "'alpha'" not in broken, broken
    [fine] = [line for line in done.stdout.splitlines() if "predictor beta" in line]
    assert fine.startswith("ok") and fine.count("fine.py:predict") == 1, fine
