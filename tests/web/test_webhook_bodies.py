"""Every body shape Numerai may send is a round: the sandbox delivers each one, and the run
gets the right round and trigger id and is submitted. What the body does not tell is filled
in (the current round, a trigger id of ours) without running a round twice; the body is kept
on the run; the token in the path never reaches the server's log."""

from __future__ import annotations

import dataclasses
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from markupsafe import escape
from server_harness import (
    ADMIN_TOKEN,
    AUTH,
    SECRET,
    RunningServer,
    StartServer,
    make_config,
    predictor,
    sandbox_env,
)
from server_process import ServerProcess

from numerai_autopilot.config import webhook_token
from numerai_autopilot.ledger import RunState
from numerai_autopilot.sandbox.settings import ModelSpec, SandboxSettings
from numerai_autopilot.sandbox.testing import RunningSandbox, running_sandbox
from numerai_autopilot.sandbox.webhooks import BodyShape

TRIGGER = "mutation($m: String!) { triggerModelWebhook(modelId: $m) }"


@pytest.fixture
def every_shape(sandbox_settings: SandboxSettings) -> Iterator[RunningSandbox]:
    """A sandbox with one Classic model per body shape, named for it."""
    models = tuple(ModelSpec(shape.value) for shape in BodyShape)
    with running_sandbox(dataclasses.replace(sandbox_settings, models=models)) as running:
        for shape in BodyShape:
            running.set_webhook_body(shape.value, model=shape.value)
        yield running


@pytest.fixture
def server(start_server: StartServer) -> RunningServer:
    return start_server({"alpha": predictor("good")})


def _is_fresh_own(trigger_id: str) -> bool:
    """A fresh trigger id of ours: `webhook-<uuid>`."""
    rest = trigger_id.removeprefix("webhook-")
    try:
        return rest != trigger_id and str(uuid.UUID(rest)) == rest
    except ValueError:
        return False


def test_every_body_shape_the_sandbox_sends_is_a_round_that_is_submitted(
    every_shape: RunningSandbox, start_server: StartServer
) -> None:
    names = [shape.value for shape in BodyShape]
    server = start_server({name: predictor("good") for name in names}, against=every_shape)
    for name in names:
        every_shape.set_webhook(name, server.hook_url(name))
    number = every_shape.open_round()["number"]
    runs = {r.model_name: r for r in server.wait_final(len(names))}
    deliveries = {d["model_name"]: d for d in every_shape.webhooks()}
    subs = {s["model_name"]: s for s in every_shape.submissions()}
    wrong = []
    for name in names:
        run, delivery, sub = runs[name], deliveries[name], subs.get(name)
        numerai_trigger = None if name in ("no_trigger", "cli_mock") else delivery["trigger_id"]
        own_trigger = {"no_trigger": run.trigger_id == f"webhook-round-{number}",  # round known
                       "cli_mock": _is_fresh_own(run.trigger_id)}  # round not known
        checks = {
            "delivered": delivery["status_code"] == 200 and delivery["shape"] == name,
            "submitted": run.state is RunState.SUBMITTED,
            "round": run.round_number == number and (sub or {}).get("round_number") == number,
            "not a test": not run.is_test,
            "trigger": own_trigger.get(name, run.trigger_id == numerai_trigger),
            "trigger sent back": sub is not None and sub["trigger_id"] == numerai_trigger,
            "body kept": run.webhook_body == httpx.Request(
                "POST", "/", json=delivery["payload"]).content.decode(),
        }
        wrong += [(name, check, run.trigger_id, run.error)
                  for check, ok in checks.items() if not ok]
    assert not wrong, wrong
    assert len(every_shape.submissions()) == len(names)


@pytest.mark.parametrize("shape", ["standard", "string_is_test", "null_is_test", "no_trigger"])
def test_test_triggers_in_each_shape_are_tests_submitted_to_the_current_round(
    sandbox: RunningSandbox, start_server: StartServer, shape: str
) -> None:
    server = start_server({"alpha": predictor("good")})
    sandbox.set_webhook("alpha", server.hook_url("alpha"))
    sandbox.set_webhook_body(shape)
    answer = sandbox.graphql(TRIGGER, {"m": sandbox.models["alpha"]})
    trigger = answer["data"]["triggerModelWebhook"]
    (run,) = server.wait_final(1)
    assert run.is_test and run.round_number is None, run
    assert run.state is RunState.SUBMITTED, run.error
    (sub,) = sandbox.submissions()
    assert sub["round_number"] == sandbox.state()["current_rounds"]["8"]["number"]
    if shape == "no_trigger":
        assert run.trigger_id.startswith("webhook-") and sub["trigger_id"] is None
    else:
        assert run.trigger_id == trigger == sub["trigger_id"]


def _post(server: RunningServer, body: dict[str, Any]) -> dict[str, Any]:
    answer = httpx.post(server.hook_url("alpha"), json=body)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def test_a_trigger_less_delivery_repeated_for_a_known_round_is_one_run(
    server: RunningServer, sandbox: RunningSandbox
) -> None:
    number = sandbox.state()["current_rounds"]["8"]["number"]
    first = _post(server, {"roundNumber": number, "dataVersion": 1})
    second = _post(server, {"roundNumber": str(number)})
    assert first["created"] and not second["created"]
    assert first["run_id"] == second["run_id"] and first["trigger_id"] == f"webhook-round-{number}"
    (run,) = server.wait_final(1)
    assert run.state is RunState.SUBMITTED, run.error
    (sub,) = sandbox.submissions()
    assert sub["round_number"] == number and sub["trigger_id"] is None


def test_trigger_less_deliveries_without_a_round_submit_the_current_round_once(
    server: RunningServer, sandbox: RunningSandbox
) -> None:
    """Each gets a fresh trigger id of ours (nothing says they are one delivery), learns its
    round from Numerai, and the round is submitted once: the second run is skipped."""
    number = sandbox.state()["current_rounds"]["8"]["number"]
    answers = [_post(server, {"roundNumber": -1, "dataVersion": 1}) for _ in range(2)]
    assert answers[0]["run_id"] != answers[1]["run_id"]
    runs = server.wait_final(2)
    assert all(r.round_number == number and not r.is_test for r in runs), runs
    assert sorted(r.state.value for r in runs) == ["skipped", "submitted"], [r.error for r in runs]
    (skipped,) = [r for r in runs if r.state is RunState.SKIPPED]
    assert f"round {number} already submitted" in (skipped.error or "")
    (sub,) = sandbox.submissions()
    assert sub["round_number"] == number and sub["trigger_id"] is None


def test_the_watcher_sees_a_run_that_learnt_its_round(
    sandbox: RunningSandbox, start_server: StartServer
) -> None:
    sandbox.close_round()  # no round left open by an earlier test for the watcher to catch
    server = start_server({"alpha": predictor("good")}, server_watch_after="2s",
                          server_watch_interval="0.3s")
    sandbox.set_webhook("alpha", server.hook_url("alpha"))
    sandbox.set_webhook_body("cli_mock")
    number = sandbox.open_round()["number"]
    (run,) = server.wait_final(1)
    time.sleep(3.0)  # past watch_after: several watcher polls, none may start a run
    assert [r.id for r in server.runs()] == [run.id]
    assert run.source == "webhook" and run.round_number == number
    assert run.state is RunState.SUBMITTED, run.error
    assert len(sandbox.submissions()) == 1


def test_the_body_is_kept_on_the_run_and_shown_escaped(
    server: RunningServer, sandbox: RunningSandbox
) -> None:
    body = {"roundNumber": "test", "triggerId": "t-kept", "isTest": True,
            "note": "<script>alert(1)</script>"}
    answer = _post(server, body)
    run = server.runtime.ledger.get(answer["run_id"])
    sent = httpx.Request("POST", "/", json=body).content.decode()
    assert run is not None and run.webhook_body == sent
    view = httpx.get(f"{server.url}/api/runs/{run.id}", headers=AUTH).json()
    assert view["webhook_body"] == run.webhook_body
    with httpx.Client(base_url=server.url) as browser:  # signed in with the admin token
        csrf = re.search(r'name="csrf" value="([^"]+)"', browser.get("/login").text)
        assert csrf is not None
        browser.post("/login", data={"csrf": csrf.group(1), "password": ADMIN_TOKEN})
        page = browser.get(f"/runs/{run.id}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    assert str(escape(run.webhook_body)) in page
    server.wait_final(1)


def test_a_path_token_never_reaches_the_server_log(tmp_path: Path, sandbox: RunningSandbox) -> None:
    """`autopilot serve` at DEBUG: a webhook with the token in its path (accepted, refused,
    the wrong method) leaves no token in the log, which does say what it could not read."""
    make_config(tmp_path, sandbox, {"alpha": predictor("good")})
    server = ServerProcess(tmp_path / "autopilot.toml", sandbox_env(sandbox),
                           tmp_path / "server.log", args=("--log-level", "DEBUG")).ready()
    model_id = sandbox.models["alpha"]
    token = webhook_token(SECRET, model_id)
    other = webhook_token("another-secret", model_id)
    try:
        url = f"{server.url}/pred/{model_id}/{token}"
        accepted = httpx.post(url, json={"roundNumber": -1, "dataVersion": 1}, timeout=30)
        assert accepted.status_code == 200, accepted.text
        assert httpx.post(f"{server.url}/pred/{model_id}/{other}", json={}).status_code == 401
        assert httpx.get(url).status_code == 405
        assert httpx.post(url, content=b"not json").status_code == 422
        deadline = time.monotonic() + 90
        run_url = f"{server.url}/api/runs/{accepted.json()['run_id']}"
        final = ("submitted", "failed", "skipped")
        while httpx.get(run_url, headers=AUTH).json()["state"] not in final:
            assert time.monotonic() < deadline, "the run did not finish"
            time.sleep(0.2)
    finally:
        server.stop()
    text = (tmp_path / "server.log").read_text(errors="replace")
    assert "could not read roundNumber (-1), triggerId (missing)" in text, text[-3000:]
    assert token not in text and other not in text
    assert "/pred/" not in text  # no line prints the webhook's path at all
