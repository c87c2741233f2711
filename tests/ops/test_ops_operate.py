"""register, trigger --wait, status, logs (--follow) and JSON logs against a real server
process and the sandbox, as a user runs them (`python -m numerai_autopilot ...`)."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import httpx
import pytest
from ops_harness import (
    ADMIN_TOKEN,
    WEBHOOK_SECRET,
    Project,
    start_server,
    write_project,
)
from server_process import ServerProcess, free_port

from numerai_autopilot.config import webhook_url
from numerai_autopilot.sandbox.testing import RunningSandbox

Served = tuple[Project, ServerProcess]
# Real server processes and Dask workers: slower than the default budget on a busy machine.
pytestmark = pytest.mark.timeout(300)


def _registered(sandbox: RunningSandbox) -> dict[str, str | None]:
    body = sandbox.graphql("query { account { models { name submissionWebhook } } }")
    return {m["name"]: m["submissionWebhook"] for m in body["data"]["account"]["models"]}


def test_register_sets_every_webhook_and_shows_the_previous_ones_redacted(served: Served) -> None:
    project, server = served
    sandbox = project.sandbox
    expected = {name: webhook_url(server.url, mid, WEBHOOK_SECRET) for name, mid in sandbox.models.items()}
    assert _registered(sandbox) == expected  # done by the fixture's `autopilot register`
    first = project.outputs[0]
    assert "alpha [" in first and "(was: (none))" in first and f"/pred/{sandbox.models['alpha']}/***" in first

    again = project.cli("register", "--base-url", server.url)
    assert again.returncode == 0, again.stderr
    line = next(x for x in again.stdout.splitlines() if x.startswith("alpha"))
    assert line == (f"alpha [{sandbox.models['alpha']}]: {server.url}/pred/{sandbox.models['alpha']}"
                    f"/*** (was: {server.url}/pred/{sandbox.models['alpha']}/***)")
    assert _registered(sandbox) == expected


def test_register_clear_and_missing_base_url(tmp_path: Path, sandbox: RunningSandbox) -> None:
    project = write_project(tmp_path, sandbox, {"alpha": "good", "beta": "good"}, with_ids=False)
    missing = project.cli("register")
    assert missing.returncode == 2 and "pass --base-url" in missing.stderr
    assert project.cli("register", "--base-url", "https://x.example").returncode == 0
    assert _registered(sandbox)["alpha"] == webhook_url("https://x.example", sandbox.models["alpha"],
                                                        WEBHOOK_SECRET)
    cleared = project.cli("register", "--clear")
    assert cleared.returncode == 0, cleared.stderr
    assert "alpha [" in cleared.stdout and "cleared (was: https://x.example/pred/" in cleared.stdout
    registered = _registered(sandbox)
    assert registered["alpha"] is None and registered["beta"] is None
    project.assert_no_secret_printed()


def test_trigger_wait_follows_the_run_to_its_submission(served: Served) -> None:
    project, server = served
    done = project.cli("trigger", "alpha", "--wait", "--timeout", "120", "--server", server.url)
    assert done.returncode == 0, done.stdout + done.stderr
    trigger_id = re.search(r"trigger id ([\w-]+)", done.stdout).group(1)  # type: ignore[union-attr]
    sub = [s for s in project.sandbox.submissions() if s["trigger_id"] == trigger_id]
    assert len(sub) == 1
    assert f"ok, submission {sub[0]['id']} carries trigger {trigger_id}" in done.stdout
    assert "submitted" in done.stdout and "predicting" in done.stdout

    # status and logs of that run, through the API with the admin token.
    status = project.cli("status", "--server", server.url)
    assert status.returncode == 0, status.stderr
    assert f"server {server.url}: ok, executor ready" in status.stdout
    row = next(x for x in status.stdout.splitlines() if " alpha " in x and "test" in x)
    assert "submitted" in row
    as_json = project.cli("status", "--json", "--server", server.url)
    assert any(r["model"] == "alpha" and r["outcome"] == sub[0]["id"]
               for r in json.loads(as_json.stdout))
    run_id = re.search(r"run (\S+): submitted", done.stdout).group(1)  # type: ignore[union-attr]
    logs = project.cli("logs", run_id, "--server", server.url)
    assert logs.returncode == 0, logs.stderr
    assert f"submitted 500 rows as submission {sub[0]['id']}" in logs.stdout
    assert re.search(r"^\d\d:\d\d:\d\d info", logs.stdout, re.MULTILINE)


def test_trigger_wait_reports_the_failing_stage_and_message(served: Served) -> None:
    project, server = served
    done = project.cli("trigger", "beta", "--wait", "--timeout", "120", "--server", server.url)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "beta: failed at predicting:" in done.stderr
    assert "model file is corrupt" in done.stderr


def test_trigger_wait_times_out_then_logs_follow_ends_when_the_run_is_final(served: Served) -> None:
    project, server = served
    done = project.cli("trigger", "gamma", "--wait", "--timeout", "3", "--server", server.url)
    assert done.returncode == 124, done.stdout + done.stderr
    match = re.search(r"run (\S+) is still (\w+); follow it with `autopilot logs \S+ --follow`",
                      done.stderr)
    assert match is not None, done.stderr
    followed = project.cli("logs", match.group(1), "--follow", "--server", server.url, timeout=90)
    assert followed.returncode == 0, followed.stderr
    assert "predicting with" in followed.stdout
    assert followed.stdout.strip().splitlines()[-1].startswith(f"run {match.group(1)}: submitted (")


def test_trigger_wait_with_no_run_arriving_stops_at_its_timeout(
    served: Served, tmp_path: Path
) -> None:
    project, _ = served
    # A second server (its own ledger) that Numerai does not know: no run shows up there.
    other = start_server(write_project(tmp_path, project.sandbox, {"alpha": "good"}))
    try:
        done = project.cli("trigger", "alpha", "--wait", "--timeout", "4", "--server", other.url)
    finally:
        other.stop()
    assert done.returncode == 124
    assert "no run for trigger" in done.stderr and "autopilot register" in done.stderr


def test_status_and_logs_need_the_admin_token_and_a_server(served: Served) -> None:
    project, server = served
    wrong_token = "nope-wrong-but-long-enough-7d1e9a3c5b"
    wrong = project.cli("status", "--server", server.url, env={"AUTOPILOT_ADMIN_TOKEN": wrong_token})
    assert wrong.returncode == 1 and "refused the admin token" in wrong.stderr
    assert wrong_token not in wrong.stdout + wrong.stderr
    nobody = project.cli("logs", "run-x", "--server", f"http://127.0.0.1:{free_port()}")
    assert nobody.returncode == 1 and "no server answers at" in nobody.stderr
    unknown = project.cli("logs", "no-such-run", "--server", server.url)
    assert unknown.returncode == 1 and "no run 'no-such-run'" in unknown.stderr


def test_json_logs_carry_labels_and_the_cloud_trace(served: Served) -> None:
    project, server = served
    sandbox = project.sandbox
    model_id = sandbox.models["alpha"]
    round_number = sandbox.state()["current_rounds"]["8"]["number"]
    answer = httpx.post(
        webhook_url(server.url, model_id, WEBHOOK_SECRET),
        json={"roundNumber": round_number, "dataVersion": 1, "triggerId": str(uuid.uuid4())},
        headers={"X-Cloud-Trace-Context": "0af7651916cd43dd8448eb211c80319c/123;o=1"},
    )
    assert answer.status_code == 200
    run_id = answer.json()["run_id"]
    done = project.cli("logs", run_id, "--follow", "--server", server.url, timeout=90)
    assert done.returncode == 0, done.stderr
    entries = [json.loads(line) for line in server.log_text().splitlines() if line.startswith("{")]
    traced = [e for e in entries if e.get("logging.googleapis.com/trace")]
    assert any(e["message"].startswith("webhook for alpha") for e in traced)
    assert {e["logging.googleapis.com/trace"] for e in traced} == {
        "projects/test-project/traces/0af7651916cd43dd8448eb211c80319c"}
    labelled = [e for e in entries if e.get("logging.googleapis.com/labels", {}).get("run") == run_id]
    assert labelled and all(e["logging.googleapis.com/labels"] == {
        "run": run_id, "model": "alpha", "round": str(round_number)} for e in labelled)
    assert all(e["severity"] in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"} for e in entries)
    # every line is JSON: the server's, Dask's, the cluster's and the workers' (beta raised)
    lines = [line for line in server.log_text().splitlines() if line.strip()]
    assert len(entries) == len(lines), [line for line in lines if not line.startswith("{")][:5]
    for secret in project.secrets() + [ADMIN_TOKEN]:
        assert secret not in server.log_text()


@pytest.fixture(autouse=True)
def _no_secret_in_output(served: Served) -> None:
    """After each test of this module, nothing printed so far holds a secret."""
    served[0].assert_no_secret_printed()
