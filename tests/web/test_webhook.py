"""`POST /pred/{model_id}/{token}` and `/pred/{model_id}?token=`: accepted webhooks are
recorded once; refused ones record nothing. What each body shape becomes:
test_webhook_bodies.py."""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_harness import (
    AUTH,
    SECRET,
    RunningServer,
    StartServer,
    make_config,
    predictor,
    submitted,
)

from numerai_autopilot.config import webhook_token, webhook_url
from numerai_autopilot.web import create_app


def payload(round_number: Any = 1101, trigger: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"roundNumber": round_number, "dataVersion": 1,
            "triggerId": trigger or str(uuid.uuid4()), **extra}


@pytest.fixture
def server(start_server: StartServer) -> RunningServer:
    return start_server({"alpha": predictor("good")})


def test_webhook_is_recorded_then_submitted_with_its_trigger_id(server: RunningServer, sandbox: Any) -> None:
    round_number = sandbox.state()["current_rounds"]["8"]["number"]
    body = payload(round_number)
    answer = httpx.post(server.hook_url("alpha"), json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["created"] is True and answer.json()["state"] == "queued"
    run_id = answer.json()["run_id"]
    assert server.runtime.ledger.get(run_id) is not None  # durable before the 200

    (run,) = server.wait_final(1)
    assert run.state.value == "submitted", run.error
    subs = httpx.get(f"{sandbox.url}/_sandbox/submissions").json()
    assert [(s["trigger_id"], s["round_number"]) for s in subs] == [(body["triggerId"], round_number)]
    assert subs[0]["id"] == run.submission_id


def test_the_same_trigger_twice_gives_one_run_and_one_submission(server: RunningServer, sandbox: Any) -> None:
    round_number = sandbox.state()["current_rounds"]["8"]["number"]
    body = payload(round_number)
    first = httpx.post(server.hook_url("alpha"), json=body).json()
    second = httpx.post(server.hook_url("alpha"), json=body).json()
    assert second["run_id"] == first["run_id"] and second["created"] is False
    runs = server.wait_final(1)
    assert len(runs) == 1 and len(submitted(runs)) == 1
    assert len(httpx.get(f"{sandbox.url}/_sandbox/submissions").json()) == 1


def test_test_trigger_submits_to_the_current_round(server: RunningServer, sandbox: Any) -> None:
    body = payload("test", isTest=True)
    assert httpx.post(server.hook_url("alpha"), json=body).status_code == 200
    (run,) = server.wait_final(1)
    assert run.is_test and run.round_number is None and run.state.value == "submitted", run.error
    (sub,) = httpx.get(f"{sandbox.url}/_sandbox/submissions").json()
    assert sub["trigger_id"] == body["triggerId"]


def _rejected(server: RunningServer, response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert server.runs() == []  # nothing recorded for a rejected request
    body: dict[str, Any] = response.json()
    return body


def test_the_token_in_the_path_and_in_the_query_both_work(
    server: RunningServer, sandbox: Any
) -> None:
    known = server.model_id("alpha")
    token = webhook_token(SECRET, known)
    assert server.hook_url("alpha") == f"{server.url}/pred/{known}/{token}"  # `webhook-url`'s form
    round_number = sandbox.state()["current_rounds"]["8"]["number"]
    in_path, in_query = payload(round_number), payload(round_number)
    first = httpx.post(f"{server.url}/pred/{known}/{token}", json=in_path)
    second = httpx.post(f"{server.url}/pred/{known}", params={"token": token}, json=in_query)
    assert (first.status_code, second.status_code) == (200, 200), (first.text, second.text)
    assert first.json()["trigger_id"] == in_path["triggerId"]
    assert second.json()["trigger_id"] == in_query["triggerId"]
    runs = {r.trigger_id: r for r in server.wait_final(2)}
    assert set(runs) == {in_path["triggerId"], in_query["triggerId"]}
    # one round, two triggers: the second is skipped, the round submitted once
    assert sorted(r.state.value for r in runs.values()) == ["skipped", "submitted"]


def test_bad_token_is_401_and_says_nothing_about_the_model(server: RunningServer) -> None:
    known = server.model_id("alpha")
    unknown = str(uuid.uuid4())
    other = webhook_token("other-secret", known)
    answers = [
        httpx.post(f"{server.url}/pred/{known}?token=wrong", json=payload()),
        httpx.post(f"{server.url}/pred/{known}", json=payload()),
        httpx.post(f"{server.url}/pred/{unknown}?token=wrong", json=payload()),
        httpx.post(f"{server.url}/pred/{known}?token={other}", json=payload()),
        httpx.post(f"{server.url}/pred/{known}/wrong", json=payload()),
        httpx.post(f"{server.url}/pred/{unknown}/wrong", json=payload()),
        httpx.post(f"{server.url}/pred/{known}/{other}", json=payload()),
        httpx.post(f"{server.url}/pred/{known}/{webhook_token(SECRET, known).upper()}",
                   json=payload()),
    ]
    bodies = [_rejected(server, a, 401) for a in answers]
    assert all(b == bodies[0] for b in bodies)
    assert "token" in bodies[0]["error"] and known not in str(bodies)


def test_the_token_is_read_from_any_form_of_query(server: RunningServer) -> None:
    """A plain `token=<hex>` is taken as it is; any other query is parsed as Starlette would
    (the last `token` wins, percent-escapes decoded), and the answers agree."""
    known = server.model_id("alpha")
    token = webhook_token(SECRET, known)
    escaped = "".join(f"%{ord(c):02x}" for c in token)
    accepted = [f"token={token}", f"token=wrong&token={token}", f"other=1&token={escaped}",
                f"token={token}&x="]
    refused = [f"token={token}&token=wrong", f"token={token.upper()}", f"token={token}0",
               f"token={token[:-1]}", "token=", f"token={token}+"]
    body = payload()
    for query in accepted:
        answer = httpx.post(f"{server.url}/pred/{known}?{query}", json=body)
        assert answer.status_code == 200, (query, answer.text)
    for query in refused:
        answer = httpx.post(f"{server.url}/pred/{known}?{query}", json=body)
        assert answer.status_code == 401, (query, answer.text)
    assert len(server.runs()) == 1  # the accepted ones carried the same trigger


def test_unknown_model_with_a_valid_token_is_404(server: RunningServer) -> None:
    unknown = str(uuid.uuid4())
    token = webhook_token(SECRET, unknown)
    _rejected(server, httpx.post(f"{server.url}/pred/{unknown}?token={token}", json=payload()), 404)
    _rejected(server, httpx.post(f"{server.url}/pred/{unknown}/{token}", json=payload()), 404)


@pytest.mark.parametrize("model_id", ["..%2F..%2Fetc%2Fpasswd", "a%00b", "%2e%2e", "x" * 300])
def test_model_ids_with_path_characters_are_rejected(server: RunningServer, model_id: str) -> None:
    response = httpx.post(f"{server.url}/pred/{model_id}?token=abc", json=payload())
    assert response.status_code in (400, 401, 404)  # 400: a NUL anywhere in the URL
    assert server.runs() == []


def test_body_over_64_kib_is_413_saying_what_to_send(server: RunningServer) -> None:
    big = json.dumps(payload(padding="x" * 70_000)).encode()
    answer = _rejected(server, httpx.post(server.hook_url("alpha"), content=big,
                                          headers={"content-type": "application/json"}), 413)
    assert answer["error"].startswith("body larger than 64 KiB; send Numerai's webhook body")


def test_chunked_body_over_64_kib_is_413(server: RunningServer) -> None:
    def chunks() -> Any:
        yield b'{"roundNumber": 1, "triggerId": "a", "x": "'
        for _ in range(100):
            yield b"y" * 1024
        yield b'"}'

    _rejected(server, httpx.post(server.hook_url("alpha"), content=chunks()), 413)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"not json", "not JSON"),
        (b"", "empty"),
        (b"[1, 2]", "a JSON array, not an object"),
        (b'"371"', "a JSON string, not an object"),
        (b"[" * 3000 + b"]" * 3000, "JSON nested too deeply"),
        (b"\xff\xfe\x00", "not JSON"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_422_saying_why(
    server: RunningServer, body: bytes, why: str
) -> None:
    response = httpx.post(server.hook_url("alpha"), content=body,
                          headers={"content-type": "application/json"})
    answer = _rejected(server, response, 422)
    assert answer["field"] == "body" and answer["error"].startswith(f"body: {why}")
    assert 'send a JSON object such as {"roundNumber": 371' in answer["error"]


def test_unknown_fields_are_ignored(server: RunningServer) -> None:
    response = httpx.post(server.hook_url("alpha"), json=payload(somethingNew={"a": 1}))
    assert response.status_code == 200
    server.wait_final(1)


def test_health_and_openapi(server: RunningServer) -> None:
    assert httpx.get(f"{server.url}/healthz").json()["status"] == "ok"
    schema = httpx.get(f"{server.url}/openapi.json").json()
    assert {"/pred/{model_id}", "/pred/{model_id}/{token}"} <= set(schema["paths"])
    body = schema["paths"]["/pred/{model_id}/{token}"]["post"]["requestBody"]
    fields = body["content"]["application/json"]["schema"]
    assert fields.get("required", []) == [] and fields["additionalProperties"] is True
    assert {"roundNumber", "triggerId", "dataVersion", "isTest"} <= set(fields["properties"])


def test_other_methods_on_the_webhook_are_405(server: RunningServer) -> None:
    for url in (server.hook_url("alpha"), f"{server.url}/pred/{server.model_id('alpha')}"):
        response = httpx.get(url)
        assert response.headers["allow"] == "POST"
        _rejected(server, response, 405)


def test_a_ledger_that_cannot_record_answers_503_and_keeps_nothing(
    server: RunningServer, tmp_path: Path
) -> None:
    ledger = sqlite3.connect(tmp_path / "ledger.db")
    body = payload(trigger="kept-after-the-outage")
    try:
        ledger.execute("ALTER TABLE runs RENAME TO runs_away")  # the ledger's table is gone
        ledger.commit()
        response = httpx.post(server.hook_url("alpha"), json=body)
    finally:
        ledger.execute("ALTER TABLE runs_away RENAME TO runs")
        ledger.commit()
        ledger.close()
    assert response.status_code == 503, response.text
    assert "could not be recorded" in response.json()["error"]
    assert SECRET not in response.text and webhook_token(server.model_id("alpha"), SECRET) not in response.text
    assert server.runs() == []
    again = httpx.post(server.hook_url("alpha"), json=body)  # sent again: recorded this time
    assert again.status_code == 200 and again.json()["created"] is True
    server.wait_final(1)


async def test_a_request_before_the_runtime_is_open_is_503_on_every_route(
    tmp_path: Path, sandbox: Any
) -> None:
    """The app's lifespan has not run (no runtime yet): the webhook and the pages alike say
    to try again, rather than failing with a 500."""
    config = make_config(tmp_path, sandbox, {"alpha": predictor("good")})
    transport = httpx.ASGITransport(app=create_app(config))  # no lifespan: nothing opened
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        hook = webhook_url("http://127.0.0.1", sandbox.models["alpha"], SECRET)
        answers = [await client.post(hook, json=payload()), await client.get("/healthz"),
                   await client.get("/api/runs", headers=AUTH)]
    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert answer.json() == {"error": "the server is starting; send the request again in "
                                          "a few seconds"}
