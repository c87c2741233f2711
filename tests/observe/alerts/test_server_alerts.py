"""Alerts from the real server against the sandbox: a failed run, the round summary, and a
model not yet submitted before the close; none carries a secret."""

from __future__ import annotations

import time
from pathlib import Path

from alert_receiver import Receiver
from app_harness import ADMIN_TOKEN, SECRET, App, pool, running_app

from numerai_autopilot.config.tokens import webhook_token
from numerai_autopilot.ledger import RunState
from numerai_autopilot.sandbox.testing import RunningSandbox


def secrets_of(app: App) -> list[str]:
    sandbox = app.sandbox
    tokens = [webhook_token(SECRET, model_id) for model_id in sandbox.models.values()]
    return [sandbox.secret_key, sandbox.public_id, SECRET, ADMIN_TOKEN, *tokens]


def assert_no_secrets(app: App, receiver: Receiver) -> None:
    for alert in receiver.received:
        text = alert["title"] + alert["message"]
        for secret in secrets_of(app):
            assert secret not in text, alert


def test_failed_run_and_round_summary(
    tmp_path: Path, sandbox: RunningSandbox, receiver: Receiver
) -> None:
    alerts = {"urls": [receiver.url], "before_close": 0}
    with running_app(tmp_path, sandbox, {"alpha": pool("good"), "beta": pool("raises")},
                     alerts=alerts) as app:
        app.register_webhooks()
        number = sandbox.open_round()["number"]
        runs = app.wait_final(2)
        failed = next(r for r in runs if r.state is RunState.FAILED)
        [alert] = receiver.wait(1, match="run failed")
        assert alert["title"] == "beta: run failed"
        message = alert["message"]
        assert f"round {number}" in message and "failed while predicting" in message
        assert "model file is corrupt" in message and failed.id in message
        [summary] = receiver.wait(1, match=f"round {number}")
        assert summary["title"] == f"round {number}: 1/2 submitted"
        assert "- alpha: submitted" in summary["message"]
        assert "- beta: failed: model 'beta'" in summary["message"]
        assert_no_secrets(app, receiver)
        assert len(receiver.received) == 2


def test_model_not_submitted_before_the_close(
    tmp_path: Path, sandbox: RunningSandbox, receiver: Receiver
) -> None:
    # Rounds in the sandbox last an hour: with before_close = 2h the round is already inside
    # the window. alpha's webhook is not registered, so no run starts.
    alerts = {"urls": [receiver.url], "before_close": "2h", "check_interval": "0.2s"}
    with running_app(tmp_path, sandbox, {"alpha": pool("good")}, alerts=alerts) as app:
        number = sandbox.state()["current_rounds"]["8"]["number"]
        [alert] = receiver.wait(1, match="not submitted")
        assert alert["title"].startswith(f"alpha: not submitted, round {number} closes in ")
        assert "check that its webhook is registered" in alert["message"]
        # checked every 0.2 s, but sent once per model and round
        time.sleep(1.0)
        assert len(receiver.received) == 1
        assert_no_secrets(app, receiver)


def test_a_run_stopped_by_the_round_close_alerts_with_its_cause(
    tmp_path: Path, sandbox: RunningSandbox, receiver: Receiver
) -> None:
    """Issue 5, item 1: when the deadline passes first, the run fails with the cause, and an
    alert says so; Numerai never got a submission."""
    alerts = {"urls": [receiver.url], "before_close": 0, "round_summary": False}
    with running_app(tmp_path, sandbox, {"alpha": pool("good")}, alerts=alerts) as app:
        app.register_webhooks()
        sandbox.set_faults(operations={"create_submission": {"error_rate": 1.0}})
        number = sandbox.open_round(length_s=8)["number"]
        [run] = app.wait_final(1, timeout=60)
        assert run.state is RunState.FAILED and "gave up at the round's close" in (run.error or "")
        [alert] = receiver.wait(1, match="run failed")
        assert alert["title"] == "alpha: run failed"
        assert f"round {number}" in alert["message"]
        assert "gave up at the round's close" in alert["message"]
        assert sandbox.submissions() == []
        assert_no_secrets(app, receiver)
