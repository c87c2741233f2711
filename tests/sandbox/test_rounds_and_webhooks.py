"""Rounds opened and closed through the control API; webhooks as Numerai sends them."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sandbox_helpers import CURRENT_ROUND, SET_WEBHOOK, TRIGGER, error_message, live_frame
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from numerai_autopilot.sandbox.settings import SandboxSettings
from numerai_autopilot.sandbox.testing import RunningSandbox, serve_asgi


@dataclass
class Receiver:
    url: str
    calls: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on 127.0.0.1: /hook/ok/... answers 200, /hook/slow/... after 1.5 s,
    /hook/fail/... 500."""
    calls: list[dict[str, Any]] = []

    async def hook(request: Request) -> Response:
        calls.append({"path": request.url.path, "query": dict(request.query_params),
                      "json": await request.json()})
        kind = request.path_params["kind"]
        if kind == "slow":
            await asyncio.sleep(1.5)
        return JSONResponse({"ok": kind != "fail"}, status_code=500 if kind == "fail" else 200)

    app = Starlette(routes=[Route("/hook/{kind}/{model}", hook, methods=["POST"]),
                            Route("/hook/{kind}/{model}/{token}", hook, methods=["POST"])])
    with serve_asgi(app) as url:
        yield Receiver(url, calls)


def test_open_round_gives_new_live_ids(sandbox: RunningSandbox) -> None:
    before = live_frame(sandbox)
    opened = sandbox.open_round()
    assert opened["number"] == sandbox.settings.start_round + 1 and opened["status"] == "OPEN"
    current = sandbox.graphql(CURRENT_ROUND, {"tournament": 8})["data"]["rounds"][0]
    assert current["number"] == opened["number"]
    after = live_frame(sandbox)
    assert len(after) == len(before) and not set(after.index) & set(before.index)
    # The previous round stays downloadable by number.
    assert live_frame(sandbox, sandbox.settings.start_round).index.equals(before.index)
    # Other tournaments keep their rounds.
    other = sandbox.graphql(CURRENT_ROUND, {"tournament": 11})["data"]["rounds"][0]
    assert other["number"] == sandbox.settings.start_round


def test_closed_round_is_not_current(sandbox: RunningSandbox) -> None:
    closed = sandbox.close_round()
    assert closed["status"] == "RESOLVING"
    body = sandbox.graphql(CURRENT_ROUND, {"tournament": 8})
    assert error_message(body) == "Current round not open for submissions"
    listing = sandbox.graphql("query { rounds(tournament: 8) { number closeTime } }")
    assert listing["data"]["rounds"][0]["number"] == sandbox.settings.start_round
    sandbox.open_round()
    assert sandbox.graphql(CURRENT_ROUND, {"tournament": 8})["data"]["rounds"]


def test_control_api_validates_input(sandbox: RunningSandbox) -> None:
    response = httpx.post(f"{sandbox.url}/_sandbox/rounds/open", json={"tournament": 9})
    assert response.status_code == 400 and "tournament" in response.json()["error"]
    state = sandbox.state()
    assert state["current_rounds"]["8"]["number"] == sandbox.settings.start_round
    assert state["account"]["public_id"] == sandbox.public_id
    assert sandbox.secret_key not in httpx.get(f"{sandbox.url}/_sandbox/state").text


def _set(sandbox: RunningSandbox, model: str, url: str | None) -> None:
    body = sandbox.graphql(SET_WEBHOOK, {"modelId": sandbox.models[model], "url": url})
    assert body["data"]["setSubmissionWebhook"] == "true", body


def test_round_open_posts_each_models_webhook(sandbox: RunningSandbox,
                                              receiver: Receiver) -> None:
    _set(sandbox, "alpha", f"{receiver.url}/hook/ok/alpha?token=t0ps3cret")
    _set(sandbox, "beta", f"{receiver.url}/hook/fail/beta?token=t0ps3cret")
    _set(sandbox, "sig", f"{receiver.url}/hook/ok/sig?token=t0ps3cret")  # Signals: not fired
    opened = sandbox.open_round()
    deliveries = sandbox.wait_for_webhooks(2)
    assert len(deliveries) == 2
    by_model = {d.model_name: d for d in deliveries}
    assert by_model["alpha"].status_code == 200 and by_model["beta"].status_code == 500
    for delivery in deliveries:
        assert delivery.url.endswith("?token=***") and "t0ps3cret" not in delivery.url
        assert delivery.payload["roundNumber"] == opened["number"]
        assert delivery.payload["dataVersion"] == 1
        assert uuid.UUID(delivery.payload["triggerId"])
        assert "isTest" not in delivery.payload and delivery.kind == "round_open"
    received = {c["path"]: c for c in receiver.calls}
    assert received["/hook/ok/alpha"]["query"] == {"token": "t0ps3cret"}
    assert received["/hook/ok/alpha"]["json"] == by_model["alpha"].payload
    listed = sandbox.webhooks()
    assert {d["model_name"] for d in listed} == {"alpha", "beta"}
    assert all("t0ps3cret" not in str(d) for d in listed)


def test_a_token_in_the_webhook_path_is_redacted_everywhere(sandbox: RunningSandbox,
                                                            receiver: Receiver) -> None:
    token = "9f" * 32  # a webhook token's form: 64 hex digits
    model_id = sandbox.models["alpha"]
    _set(sandbox, "alpha", f"{receiver.url}/hook/ok/{model_id}/{token}")  # a UUID is kept
    sandbox.open_round()
    [delivery] = sandbox.wait_for_webhooks(1)
    assert delivery.url == f"{receiver.url}/hook/ok/{model_id}/***"
    assert receiver.calls[0]["path"] == f"/hook/ok/{model_id}/{token}"  # sent as registered
    for shown in (str(sandbox.webhooks()), httpx.get(f"{sandbox.url}/_sandbox/state").text):
        assert token not in shown and f"{model_id}/***" in shown
    _set(sandbox, "alpha", f"http://127.0.0.1:9/pred/{model_id}/{token}")  # nothing listens
    sandbox.open_round()
    failed = sandbox.wait_for_webhooks(2)[1]
    assert failed.error and token not in failed.error and token not in failed.url


EXPECTED_BODIES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # shape: (round-open body, test body), "R" and "T" standing for the round and trigger id
    "standard": ({"roundNumber": "R", "dataVersion": 1, "triggerId": "T"},
                 {"roundNumber": "test", "dataVersion": 1, "triggerId": "T", "isTest": True}),
    "string_round": ({"roundNumber": "'R'", "dataVersion": 1, "triggerId": "T"},
                     {"roundNumber": "test", "dataVersion": 1, "triggerId": "T", "isTest": True}),
    "float_round": ({"roundNumber": "R.0", "dataVersion": 1, "triggerId": "T"},
                    {"roundNumber": "test", "dataVersion": 1, "triggerId": "T", "isTest": True}),
    "null_is_test": ({"roundNumber": "R", "dataVersion": 1, "triggerId": "T", "isTest": None},
                     {"roundNumber": "test", "dataVersion": 1, "triggerId": "T", "isTest": None}),
    "string_is_test": ({"roundNumber": "R", "dataVersion": 1, "triggerId": "T", "isTest": "false"},
                       {"roundNumber": "test", "dataVersion": 1, "triggerId": "T",
                        "isTest": "true"}),
    "null_fields": ({"roundNumber": None, "dataVersion": None, "triggerId": "T", "isTest": None},
                    {"roundNumber": "test", "dataVersion": None, "triggerId": "T",
                     "isTest": None}),
    "no_trigger": ({"roundNumber": "R", "dataVersion": 1},
                   {"roundNumber": "test", "dataVersion": 1, "isTest": True}),
    "trigger_only": ({"triggerId": "T"}, {"triggerId": "T"}),
    "cli_mock": ({"roundNumber": -1, "dataVersion": 1}, {"roundNumber": -1, "dataVersion": 1}),
}


def _filled(template: dict[str, Any], round_number: int, trigger_id: str) -> dict[str, Any]:
    values = {"R": round_number, "'R'": str(round_number), "R.0": float(round_number),
              "T": trigger_id}
    return {k: values.get(v, v) if isinstance(v, str) else v for k, v in template.items()}


@pytest.mark.parametrize("shape", list(EXPECTED_BODIES))
def test_each_body_shape_is_sent_as_set_for_a_model_or_for_all(
        sandbox: RunningSandbox, receiver: Receiver, shape: str) -> None:
    _set(sandbox, "alpha", f"{receiver.url}/hook/ok/alpha")
    _set(sandbox, "beta", f"{receiver.url}/hook/ok/beta")
    assert sandbox.set_webhook_body(shape, model="alpha") == {
        "default": "standard", "models": {sandbox.models["alpha"]: shape}}
    number = sandbox.open_round()["number"]
    trigger_id = sandbox.graphql(TRIGGER, {"modelId": sandbox.models["alpha"]})[
        "data"]["triggerModelWebhook"]
    deliveries = sandbox.wait_for_webhooks(3)
    (opened,) = [d for d in deliveries if d.model_name == "alpha" and d.kind == "round_open"]
    (test,) = [d for d in deliveries if d.kind == "test"]
    (beta,) = [d for d in deliveries if d.model_name == "beta"]
    round_open, test_body = EXPECTED_BODIES[shape]
    assert opened.payload == _filled(round_open, number, opened.trigger_id or "")
    assert test.payload == _filled(test_body, number, trigger_id) and test.trigger_id == trigger_id
    assert (opened.shape, test.shape, beta.shape) == (shape, shape, "standard")
    assert beta.payload == _filled(EXPECTED_BODIES["standard"][0], number, beta.trigger_id or "")
    received = {c["path"]: c["json"] for c in receiver.calls}
    assert received["/hook/ok/alpha"] in (opened.payload, test.payload)


def test_extra_fields_and_the_default_shape(sandbox: RunningSandbox, receiver: Receiver) -> None:
    _set(sandbox, "alpha", f"{receiver.url}/hook/ok/alpha")
    sandbox.set_webhook_body("extra_fields")
    number = sandbox.open_round()["number"]
    [delivery] = sandbox.wait_for_webhooks(1)
    assert delivery.shape == "extra_fields" and delivery.payload["roundNumber"] == number
    assert delivery.payload["triggerId"] == delivery.trigger_id
    assert delivery.payload["dataVersion"] == "v5.3" and "sentAt" in delivery.payload


def test_the_webhook_body_setting_is_checked(sandbox: RunningSandbox,
                                             sandbox_settings: SandboxSettings) -> None:
    url = f"{sandbox.url}/_sandbox/webhooks/body"
    unknown = httpx.post(url, json={"body": "weird"})
    assert unknown.status_code == 400 and "not one of: standard, string_round" in unknown.text
    nobody = httpx.post(url, json={"body": "cli_mock", "model": "nobody"})
    assert nobody.status_code == 400 and "no model named or with id 'nobody'" in nobody.text
    by_id = httpx.post(url, json={"body": "cli_mock", "model": sandbox.models["beta"]})
    assert by_id.json()["models"] == {sandbox.models["beta"]: "cli_mock"}
    assert httpx.get(url).json() == by_id.json()
    with pytest.raises(ValueError, match="webhook body 'weird' is not one of"):
        dataclasses.replace(sandbox_settings, webhook_body="weird")


def test_round_open_does_not_wait_for_webhooks(sandbox: RunningSandbox,
                                               receiver: Receiver) -> None:
    _set(sandbox, "alpha", f"{receiver.url}/hook/slow/alpha?token=x")
    started = time.monotonic()
    sandbox.open_round()
    assert time.monotonic() - started < 1.0
    [delivery] = sandbox.wait_for_webhooks(1, timeout=10)
    assert delivery.status_code == 200 and (delivery.duration_s or 0) >= 1.4


def test_unreachable_webhook_records_an_error_without_the_token(
        sandbox: RunningSandbox) -> None:
    _set(sandbox, "alpha", "http://127.0.0.1:9/hook?token=hunter2")  # port 9: nothing listens
    sandbox.open_round()
    [delivery] = sandbox.wait_for_webhooks(1)
    assert delivery.status_code is None and delivery.error
    assert "hunter2" not in delivery.error and "hunter2" not in delivery.url


def test_trigger_model_webhook_sends_a_test_payload(sandbox: RunningSandbox,
                                                    receiver: Receiver) -> None:
    body = sandbox.graphql(TRIGGER, {"modelId": sandbox.models["gamma"]})
    assert "no submission webhook" in error_message(body)
    _set(sandbox, "gamma", f"{receiver.url}/hook/ok/gamma?token=abc")
    trigger_id = sandbox.graphql(TRIGGER, {"modelId": sandbox.models["gamma"]})[
        "data"]["triggerModelWebhook"]
    [delivery] = sandbox.wait_for_webhooks(1)
    assert delivery.payload == {"roundNumber": "test", "dataVersion": 1,
                                "triggerId": trigger_id, "isTest": True}
    assert delivery.kind == "test" and receiver.calls[0]["json"] == delivery.payload


def test_webhook_can_be_cleared_and_must_be_http(sandbox: RunningSandbox,
                                                 receiver: Receiver) -> None:
    _set(sandbox, "alpha", f"{receiver.url}/hook/ok/alpha")
    _set(sandbox, "alpha", None)
    sandbox.open_round()
    assert sandbox.webhooks() == []
    body = sandbox.graphql(SET_WEBHOOK, {"modelId": sandbox.models["alpha"],
                                         "url": "ftp://example.com/x"})
    assert "Invalid webhook url" in error_message(body)
    body = sandbox.graphql(SET_WEBHOOK, {"modelId": sandbox.models["alpha"], "url": "x"},
                           auth=False)
    assert "must be authenticated" in error_message(body)
