"""`autopilot doctor` against the sandbox: all ok, then each kind of problem on its own line."""

from __future__ import annotations

from pathlib import Path

import pytest
from ops_harness import PREDICTORS, write_project

from numerai_autopilot.sandbox.testing import RunningSandbox

# Real server processes and Dask workers: slower than the default budget on a busy machine.
pytestmark = pytest.mark.timeout(300)


def lines(output: str) -> dict[str, str]:
    """`ok   what: detail` lines by `what`."""
    found = {}
    for line in output.splitlines():
        mark, _, rest = line.partition(" ")
        if mark in {"ok", "FAIL"} and ":" in rest:
            what, _, detail = rest.strip().partition(": ")
            found[what] = f"{mark} {detail}"
    return found


def test_doctor_all_ok(tmp_path: Path, sandbox: RunningSandbox) -> None:
    project = write_project(tmp_path, sandbox, {"alpha": "good", "beta": "good"}, with_ids=False)
    assert project.cli("register", "--base-url", "https://ap.example").returncode == 0
    done = project.cli("doctor", "--base-url", "https://ap.example")
    assert done.returncode == 0, done.stdout + done.stderr
    found = lines(done.stdout)
    assert set(found) == {"config", "server.secret", "ledger", "keys", "model alpha", "model beta",
                          "webhook alpha", "webhook beta", "round (classic)", "predictor alpha",
                          "predictor beta"}, done.stdout
    assert all(v.startswith("ok") for v in found.values()), done.stdout
    assert found["model alpha"] == f"ok {sandbox.models['alpha']} (classic)"
    assert found["webhook alpha"] == f"ok https://ap.example/pred/{sandbox.models['alpha']}/***"
    assert found["predictor beta"] == f"ok {PREDICTORS}:good loads in a worker"
    assert found["round (classic)"].startswith("ok ") and " open until " in found["round (classic)"]
    project.assert_no_secret_printed()


def test_doctor_names_each_problem_and_its_fix(tmp_path: Path, sandbox: RunningSandbox) -> None:
    project = write_project(tmp_path, sandbox, {"alpha": "good", "beta": "no_such_function"})
    config = project.config.read_text()
    config += '\n[models.ghost]\nmodel_id = "00000000-dead-beef-0000-000000000000"\n' \
              f'predictor = "{PREDICTORS}:good"\n'
    project.config.write_text(config)
    refused = project.cli("register", "--base-url", "https://old.example")
    assert refused.returncode == 2 and "models.ghost: no model with model_id 0000" in refused.stderr
    done = project.cli("doctor", "--base-url", "https://ap.example")
    assert done.returncode == 1, done.stdout + done.stderr
    found = lines(done.stdout)
    assert found["keys"].startswith("ok")
    assert found["model ghost"].startswith("FAIL no model with id 00000000-dead-beef")
    assert "fix models.ghost.model_id" in found["model ghost"]
    assert found["predictor beta"].startswith("FAIL ") and "no_such_function" in found["predictor beta"]
    assert found["predictor alpha"].startswith("ok")
    # register stopped at ghost before setting anything: alpha has no webhook yet.
    assert found["webhook alpha"] == ("FAIL no webhook registered; run "
                                      "`autopilot register --base-url https://ap.example`")
    project.assert_no_secret_printed()


def test_doctor_reports_refused_keys_and_a_bad_config(tmp_path: Path, sandbox: RunningSandbox) -> None:
    project = write_project(tmp_path, sandbox, {"alpha": "good"})
    refused = project.cli("doctor", env={"NUMERAI_SECRET_KEY": "wrong-key-value",
                                         "AUTOPILOT_LEDGER_REPLICA": "file:///backups/ledger"})
    assert refused.returncode == 1
    found = lines(refused.stdout)
    assert found["ledger replica"].startswith(f"ok {tmp_path / 'ledger.db'} -> file:///backups/ledger")
    assert found["keys"].startswith("FAIL Numerai refused the API keys")
    assert "NUMERAI_PUBLIC_ID and NUMERAI_SECRET_KEY" in found["keys"]
    assert "wrong-key-value" not in refused.stdout + refused.stderr
    assert found["ledger"].startswith("ok") and found["predictor alpha"].startswith("ok")
    project.config.write_text(project.config.read_text() + '\n[server]\nport = "eighty"\n')
    broken = project.cli("doctor")
    assert broken.returncode == 1 and broken.stdout.startswith("FAIL config: ")
    assert "server.port" in broken.stdout
    project.assert_no_secret_printed()
