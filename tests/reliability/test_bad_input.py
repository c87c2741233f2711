"""Bad input everywhere: fuzzed API requests, garbage bodies, odd webhook bodies, hostile
model ids, predictors returning the wrong thing, and secret rotation. Nothing gives a 5xx,
nothing refused records a run, an odd but readable webhook body is a run with what could be
read, and each bad predictor output fails its run with a message saying what to fix.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from reliability_harness import (
    AUTH,
    OLD_SECRET,
    SECRET,
    module_sandbox_settings,
    post_webhook,
    predictor,
    sandbox_env,
    wait_final,
    write_config,
)
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from server_process import ServerProcess

from numerai_autopilot.config import parse_config
from numerai_autopilot.config.tokens import webhook_token
from numerai_autopilot.errors import ConfigError
from numerai_autopilot.ledger import Ledger, RunState
from numerai_autopilot.sandbox.testing import RunningSandbox, running_sandbox
from numerai_autopilot.web.payload import PayloadError, WebhookPayload, parse_payload

MODELS = {"alpha": "good", "beta": "huge", "gamma": "strings", "delta": "int_index"}


@dataclass
class Rig:
    sandbox: RunningSandbox
    server: ServerProcess
    ledger: Ledger

    def run_count(self) -> int:
        return len(self.ledger.runs(limit=100_000))

    def model_id(self, name: str) -> str:
        return self.sandbox.models[name]


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory, sandbox_data_cache: Path) -> Iterator[Rig]:
    base = tmp_path_factory.mktemp("bad-input")
    settings_ = module_sandbox_settings(base, sandbox_data_cache, extra_models=("delta",))
    with running_sandbox(settings_) as sandbox:
        config = write_config(
            base, sandbox, {name: predictor(ref) for name, ref in MODELS.items()},
            server={"previous_secrets": [OLD_SECRET], "max_concurrent_runs": 4},
        )
        server = ServerProcess(config, sandbox_env(sandbox), base / "server.log").ready()
        ledger = Ledger.from_url(f"sqlite:///{base / 'ledger.db'}")
        try:
            yield Rig(sandbox, server, ledger)
        finally:
            server.stop()
            ledger.close()


def _test_payload(trigger: str | None = None) -> dict[str, Any]:
    return {"roundNumber": "test", "dataVersion": 1, "isTest": True,
            "triggerId": trigger or f"t-{uuid.uuid4()}"}


# -- predictors returning the wrong thing --------------------------------------------------------


def test_bad_predictor_output_fails_its_run_with_a_clear_error(rig: Rig) -> None:
    triggers = {}
    for name in MODELS:
        payload = _test_payload()
        answer = post_webhook(rig.server.url, rig.model_id(name), payload)
        assert answer.status_code == 200, answer.text
        triggers[payload["triggerId"]] = name
    runs = {triggers[r.trigger_id]: r for r in wait_final(
        rig.ledger, len(MODELS), timeout=90, where=lambda r: r.trigger_id in triggers)}
    assert runs["alpha"].state is RunState.SUBMITTED, runs["alpha"].error
    expected = {
        "beta": ["25,000 rows for 500 live ids", "one row per live id"],
        "gamma": ["dtype", "must be numbers in [0, 1]"],
        "delta": ["indexed by RangeIndex", "live_features.index"],
    }
    for name, phrases in expected.items():
        run = runs[name]
        assert run.state is RunState.FAILED, (name, run.state)
        assert run.error is not None and f"model {name!r}" in run.error, run.error
        for phrase in phrases:
            assert phrase in run.error, (name, run.error)
    failed_models = {s["model_id"] for s in rig.sandbox.submissions()} & {
        rig.model_id(n) for n in expected}
    assert not failed_models, "an invalid prediction was uploaded"


# -- garbage at the webhook -----------------------------------------------------------------------


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


GARBAGE: dict[str, tuple[bytes, int]] = {
    "not json": (b"\xff\xfe<html>garbage", 422),
    "empty": (b"", 422),
    "a list": (b"[1, 2, 3]", 422),
    "a string": (b'"1101"', 422),
    "nested 10,000 deep": (_nested(10_000), 422),
    "oversized": (b'{"roundNumber": 5, "triggerId": "x", "pad": "' + b"a" * 70_000 + b'"}', 413),
}


@pytest.mark.parametrize("name", list(GARBAGE))
def test_garbage_bodies_are_refused_and_record_nothing(rig: Rig, name: str) -> None:
    """Only what cannot be Numerai's body is refused: not a JSON object, or over 64 KiB."""
    body, status = GARBAGE[name]
    before = rig.run_count()
    model_id = rig.model_id("alpha")
    answer = httpx.post(f"{rig.server.url}/pred/{model_id}",
                        params={"token": webhook_token(SECRET, model_id)}, content=body,
                        headers={"content-type": "application/json"}, timeout=30)
    assert answer.status_code == status, answer.text
    assert "send" in answer.json()["error"]  # says what to send instead
    assert rig.run_count() == before


# Objects Numerai's references would not send, read for what they tell (issue 22: a request
# with a valid token is a round). Each names a closed round (its own: a body without a
# usable trigger id gets the round's own, `webhook-round-N`, one run per round) so that no
# run submits: it is recorded, with the round and trigger id that could be read, and fails.
ODD: dict[str, tuple[dict[str, Any], bool]] = {  # body, whether its trigger id is usable
    "object nested 40 deep": ({"roundNumber": 5, "triggerId": "odd-deep",
                               "extra": json.loads("[" * 40 + "]" * 40)}, True),
    "string round": ({"roundNumber": "6", "triggerId": "odd-string"}, True),
    "float round": ({"roundNumber": 7.0, "triggerId": "odd-float"}, True),
    "null isTest, any dataVersion": ({"roundNumber": 8, "triggerId": "odd-null", "isTest": None,
                                      "dataVersion": {"v": [5]}}, True),
    "trigger with path characters": ({"roundNumber": 9, "triggerId": "../../etc/passwd"}, False),
    "trigger too long": ({"roundNumber": 10, "triggerId": "a" * 129}, False),
    "nul in trigger": ({"roundNumber": 11, "triggerId": "a\u0000b"}, False),
    "no trigger": ({"roundNumber": 12, "dataVersion": 1}, False),
}


@pytest.mark.parametrize("name", list(ODD))
def test_odd_objects_are_recorded_with_what_could_be_read(rig: Rig, name: str) -> None:
    body, usable = ODD[name]
    answer = post_webhook(rig.server.url, rig.model_id("alpha"), body)
    assert answer.status_code == 200, answer.text
    run = rig.ledger.get(answer.json()["run_id"])
    number = int(float(body["roundNumber"]))
    assert run is not None and run.round_number == number and not run.is_test
    expected = body["triggerId"] if usable else f"webhook-round-{number}"
    assert run.trigger_id == expected and run.webhook_body is not None
    assert json.loads(run.webhook_body) == json.loads(json.dumps(body))


def test_oversized_chunked_body_without_length_is_refused(rig: Rig) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"roundNumber": 5, "triggerId": "x", "pad": "'
        for _ in range(100):
            yield b"a" * 4096
        yield b'"}'

    model_id = rig.model_id("alpha")
    before = rig.run_count()
    answer = httpx.post(f"{rig.server.url}/pred/{model_id}",
                        params={"token": webhook_token(SECRET, model_id)}, content=chunks(),
                        timeout=30)
    assert answer.status_code == 413
    assert rig.run_count() == before


HOSTILE_IDS = ["..%2F..%2Fetc%2Fpasswd", "a%2Fb", "%00", "..", "x;rm -rf", "%E2%80%AE", "a" * 2000,
               "%25", "alpha?x=1"]


@pytest.mark.parametrize("model_id", HOSTILE_IDS)
def test_model_ids_with_path_characters(rig: Rig, model_id: str) -> None:
    """A valid token for a hostile id still finds no model; a bad token says nothing more."""
    before = rig.run_count()
    raw = httpx.URL(f"{rig.server.url}/pred/{model_id}").path.removeprefix("/pred/")
    for token in (webhook_token(SECRET, raw), "nope"):
        answer = httpx.post(f"{rig.server.url}/pred/{model_id}", params={"token": token},
                            json=_test_payload(), timeout=30)
        assert answer.status_code in (400, 401, 404, 405), (model_id, answer.status_code, answer.text)
    assert rig.run_count() == before


# -- secret rotation ------------------------------------------------------------------------------


def test_secret_rotation_keeps_old_tokens_working_and_refuses_unknown_ones(rig: Rig) -> None:
    model_id = rig.model_id("alpha")
    before = rig.run_count()
    current = post_webhook(rig.server.url, model_id, _test_payload(), secret=SECRET)
    old = post_webhook(rig.server.url, model_id, _test_payload(), secret=OLD_SECRET)
    unknown = post_webhook(rig.server.url, model_id, _test_payload(), secret="someone-elses")
    missing = httpx.post(f"{rig.server.url}/pred/{model_id}", json=_test_payload(), timeout=30)
    assert (current.status_code, old.status_code) == (200, 200)
    assert (unknown.status_code, missing.status_code) == (401, 401)
    assert "token" in unknown.json()["error"] and model_id not in unknown.text
    assert rig.run_count() == before + 2


# -- fuzzing the whole API from its OpenAPI schema -------------------------------------------------


def _fuzz(rig: Rig, operation: Any, mode: GenerationMode, statuses: dict[str, set[int]]) -> None:
    webhook = operation.path.startswith("/pred/{model_id}")
    in_path = operation.path == "/pred/{model_id}/{token}"

    @settings(max_examples=25, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    def fuzz(case: Any, data: st.DataObject) -> None:
        if webhook and data.draw(st.booleans(), label="configured model, valid token"):
            name = data.draw(st.sampled_from(sorted(MODELS)), label="model")
            token = webhook_token(SECRET, rig.model_id(name))
            case.path_parameters = {"model_id": rig.model_id(name),
                                    **({"token": token} if in_path else {})}
            if not in_path:
                case.query = {**(case.query or {}), "token": token}
        before = rig.run_count()
        response = case.call(base_url=rig.server.url, headers=AUTH, timeout=30)
        statuses.setdefault(operation.label, set()).add(response.status_code)
        case.validate_response(response, checks=[not_a_server_error])
        if webhook:
            recorded = rig.run_count() - before
            if response.status_code == 200:
                assert recorded in (0, 1)  # 0: a repeated trigger id
                assert response.json()["run_id"]
            else:
                assert recorded == 0, (response.status_code, response.text)

    try:
        fuzz()
    except Unsatisfiable:
        # an operation with nothing to violate (no parameters, e.g. /healthz): no negative case
        assert mode is GenerationMode.NEGATIVE, operation.label


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_fuzzed_from_its_schema(rig: Rig, mode: GenerationMode) -> None:
    """Every operation of /openapi.json, with schema-valid and schema-violating requests: no
    5xx (the admin token is sent, so the API's own checks are reached); the webhook records
    a run only when it answers 200. Half the webhook cases (the
    token in the path or the query) get a configured model id and its valid token, so
    generated bodies reach the parser."""
    schema = schemathesis.openapi.from_url(f"{rig.server.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert {op.path for op in operations} >= {"/pred/{model_id}", "/pred/{model_id}/{token}",
                                              "/healthz", "/api/runs"}
    statuses: dict[str, set[int]] = {}
    for operation in operations:
        _fuzz(rig, operation, mode, statuses)
    print(f"\nschemathesis {mode.value}: {statuses}")
    if mode is GenerationMode.POSITIVE:  # schema-valid bodies with a valid token are accepted
        assert any(200 in seen for label, seen in statuses.items() if "/pred/" in label)


# -- the parsers on their own ---------------------------------------------------------------------


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
payload_like = st.fixed_dictionaries(
    {},
    optional={
        "roundNumber": st.one_of(st.integers(), st.just("test"), json_values),
        "triggerId": st.one_of(st.text(max_size=140), json_values),
        "dataVersion": json_values, "isTest": json_values, "extra": json_values,
    },
)


@settings(max_examples=400, deadline=None)
@given(body=st.one_of(st.binary(max_size=512),
                      json_values.map(lambda v: json.dumps(v).encode()),
                      payload_like.map(lambda v: json.dumps(v).encode())))
def test_parse_payload_gives_a_payload_or_a_payload_error(body: bytes) -> None:
    """Any bytes: a payload, or a PayloadError about the whole body; any JSON object: a
    payload whose round and trigger id are usable, or None."""
    try:
        payload = parse_payload(body)
    except PayloadError as exc:
        assert exc.field == "body" and exc.message
        assert not isinstance(_json_or_none(body), dict)
    else:
        assert isinstance(payload, WebhookPayload)
        assert payload.round_number is None or 0 <= payload.round_number <= 1_000_000
        assert payload.trigger_id is None or re.fullmatch(r"[A-Za-z0-9_.:-]{1,128}",
                                                          payload.trigger_id)
        assert payload.raw and "\x00" not in payload.raw


def _json_or_none(body: bytes) -> object:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=300), env_value=st.text(max_size=40))
def test_config_loader_gives_a_config_or_a_config_error(text: str, env_value: str) -> None:
    env = {"AUTOPILOT_SERVER_PORT": env_value, "AUTOPILOT_EXECUTOR_WORKERS": env_value}
    for source in (text, f"[models.m]\npredictor = 'x.py:f'\ntimeout = {json.dumps(text)}\n"):
        try:
            parse_config(source, source="autopilot.toml", base_dir=Path("."), env=env)
        except ConfigError as exc:
            assert str(exc)


@pytest.mark.parametrize("path", ["/api/runs?round=99999999999999999999",
                                  "/api/runs/x/logs?after=178213894782797377544650752"])
def test_api_integers_beyond_the_database_range_are_422(rig: Rig, path: str) -> None:
    """Found by the fuzzing above: these overflowed SQLite's INTEGER and answered 500."""
    assert httpx.get(f"{rig.server.url}{path}", headers=AUTH, timeout=30).status_code == 422
