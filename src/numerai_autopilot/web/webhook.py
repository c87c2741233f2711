"""`POST /pred/{model_id}?token=...`: record the run durably, answer 200 with its id.

Checks, in order, so a rejected request records nothing and leaks nothing:
1. the token (401, the same answer whether or not the model exists);
2. the model is configured (404);
3. the body is at most 64 KiB (413);
4. the body is Numerai's payload (422 naming the field).

A round opening brings every model's webhook at once, so this path is a pure ASGI layer that
the app (`server.app.AutopilotApp`) calls before FastAPI's own per-request work: no middleware
stack, Request object, dependency solving or response class per webhook. `WEBHOOK_OPENAPI`
documents it in `/openapi.json`; other methods on the path get 405. A ledger that cannot
record the run answers 503 (nothing was recorded: Numerai or `autopilot trigger` may send
it again), any other failure 500; both are logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from json.encoder import encode_basestring_ascii as _json_string
from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import State
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from numerai_autopilot.config import AppConfig, ModelConfig
from numerai_autopilot.errors import LedgerError
from numerai_autopilot.ledger import NewRun, Run
from numerai_autopilot.runtime import Runtime
from numerai_autopilot.web.payload import MAX_BODY_BYTES, PayloadError, parse_payload
from numerai_autopilot.config.tokens import verify_token

log = logging.getLogger(__name__)

PATH = "/pred/{model_id}"
_PATH = re.compile(r"/pred/([^/]+)")
_HEADERS = [(b"content-type", b"application/json")]
_PLAIN_TOKEN = re.compile(rb"token=([0-9a-f]+)")

_PAYLOAD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["roundNumber", "triggerId"],
    "properties": {
        "roundNumber": {"oneOf": [{"type": "integer", "minimum": 0}, {"const": "test"}]},
        "triggerId": {"type": "string", "minLength": 1, "maxLength": 128,
                      "pattern": "^[A-Za-z0-9_.:-]+$"},
        "dataVersion": {"oneOf": [{"type": "integer"}, {"type": "string", "maxLength": 32}]},
        "isTest": {"type": "boolean"},
    },
}

WEBHOOK_OPENAPI: dict[str, Any] = {
    "post": {
        "summary": "Numerai's round-open webhook for one model",
        "operationId": "receive_webhook",
        "parameters": [
            {"name": "model_id", "in": "path", "required": True, "schema": {"type": "string"}},
            {"name": "token", "in": "query", "required": True, "schema": {"type": "string"}},
        ],
        "requestBody": {"required": True,
                        "content": {"application/json": {"schema": _PAYLOAD_SCHEMA}}},
        "responses": {
            "200": {"description": "recorded; the run id"},
            "401": {"description": "bad token"},
            "404": {"description": "unknown model"},
            "413": {"description": "body over 64 KiB"},
            "422": {"description": "not Numerai's payload; the field is named"},
        },
    }
}


class WebhookEndpoint:
    """ASGI app answering `/pred/{model_id}` itself; any other path goes on to `app`.

    `state` is the app's state, where the lifespan puts the runtime. Answer times go to the
    runtime's `webhook_seconds` histogram, by status.
    """

    def __init__(self, app: ASGIApp, state: State) -> None:
        self.app = app
        self._state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        matched = _PATH.fullmatch(scope["path"]) if scope["type"] == "http" else None
        if matched is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        runtime: Runtime | None = getattr(self._state, "runtime", None)
        status = 500
        answering = _Answering(send)
        try:
            if scope["method"] != "POST":
                status = 405
                await _answer(answering, status,
                              {"error": "use POST; Numerai's webhook is a POST"},
                              [(b"allow", b"POST")])
            elif runtime is None:
                status = 503
                await _answer(answering, status,
                              {"error": "the server is starting; Numerai retries"})
            else:
                status, answer = await _receive_webhook(runtime, matched.group(1), scope, receive)
                await _answer(answering, status, answer)
        except _ClientGone:
            status = 499  # nothing was recorded and no one is left to answer
        except Exception as exc:  # noqa: BLE001  (logged by `failed`)
            status, answer = failed(matched.group(1), exc)
            if not answering.started:
                await _answer(answering, status, answer)
        finally:
            if runtime is not None:
                observe(runtime, status, started)


class _Answering:
    """`send`, remembering whether the answer has started."""

    __slots__ = ("_send", "started")

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        self.started = True
        await self._send(message)


class _ClientGone(Exception):
    """The client closed the connection before its whole body arrived."""


async def _answer(send: Send, status: int, answer: dict[str, Any],
                  headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = answer_body(answer)
    await send({"type": "http.response.start", "status": status,
                "headers": [*_HEADERS, *(headers or ()),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _receive_webhook(runtime: Runtime, model_id: str, scope: Scope,
                           receive: Receive) -> tuple[int, dict[str, Any]]:
    if not token_ok(runtime.config, model_id, scope["query_string"]):
        await _read_body(scope, receive)  # drained (bounded) so the connection stays reusable
        return UNAUTHORIZED
    model = await _model(runtime, model_id)
    if model is None:
        await _read_body(scope, receive)
        return UNKNOWN_MODEL
    body = await _read_body(scope, receive)
    if body is None:
        return TOO_LARGE
    new = new_run(model, model_id, body)
    if isinstance(new, tuple):
        return new
    try:
        outcome = await runtime.recorder.record(new)
    except Exception as exc:  # noqa: BLE001  (answered and logged by `failed`)
        return failed(model_id, exc)
    return recorded(runtime, new, outcome)


# The steps of a webhook, shared with the protocol-level path (`server.protocol`).

UNAUTHORIZED = (401, {"error": "invalid or missing token; use the URL from `autopilot webhook-url`"})
UNKNOWN_MODEL = (404, {"error": "no configured model has this id; check models.*.model_id"})
TOO_LARGE = (413, {"error": f"body larger than {MAX_BODY_BYTES // 1024} KiB"})


def token_ok(config: AppConfig, model_id: str, query_string: bytes) -> bool:
    """The URL's `token` (the last one, as in Starlette's query_params) is the model's."""
    plain = _PLAIN_TOKEN.fullmatch(query_string)  # what `autopilot webhook-url` gives
    if plain is not None:
        token: str | None = plain.group(1).decode("ascii")
    else:
        token = None
        for key, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
            if key == "token":
                token = value
    return verify_token(token, model_id, _secrets(config))


def new_run(model: ModelConfig, model_id: str, body: bytes) -> NewRun | tuple[int, dict[str, Any]]:
    """The run a webhook body asks for, or the 422 answer naming what is wrong with it."""
    try:
        payload = parse_payload(body)
    except PayloadError as exc:
        return 422, {"error": str(exc), "field": exc.field}
    return NewRun(
        model_name=model.name,
        model_id=model_id,
        tournament=model.tournament_id,
        round_number=payload.round_number,
        trigger_id=payload.triggerId,
        data_version=model.data_version,
        is_test=payload.is_test,
        source="webhook",
        resubmit=model.resubmit,
    )


def recorded(runtime: Runtime, new: NewRun, outcome: tuple[Run, bool]) -> tuple[int, dict[str, Any]]:
    """The 200 answer for a committed run; a new run wakes the dispatcher.

    Its log line is written once the answers already queued are written: the recorder sets
    a batch's results together, so the answers of a burst come first. A line costs 12 µs
    (text) to 23 µs (JSON) of the event loop, which before each answer of 200 delayed the
    last by 2.5-4.7 ms. `call_soon` keeps the request's context (its Cloud trace)."""
    run, created = outcome
    if created:
        runtime.dispatcher.wake()
        asyncio.get_running_loop().call_soon(
            log.info, "webhook for %s round %s: run %s", new.model_name,
            "test" if new.round_number is None else new.round_number, run.id)
    return 200, {"run_id": run.id, "state": run.state.value, "created": created}


def failed(model_id: str, exc: BaseException) -> tuple[int, dict[str, Any]]:
    """The answer when recording raised: 503 when the ledger failed (nothing was kept, so
    Numerai or `autopilot trigger` may send it again), 500 otherwise; both logged."""
    if isinstance(exc, LedgerError):
        log.error("webhook for model id %s: the run could not be recorded: %s", model_id, exc)
        return 503, {"error": "the run could not be recorded (the ledger failed; the server "
                              "log says why); nothing was kept, so send it again"}
    log.error("webhook for model id %s failed", model_id, exc_info=exc)
    return 500, {"error": "internal error; see the server log"}


_RUN_ANSWER = ("run_id", "state", "created")


def answer_body(answer: dict[str, Any]) -> bytes:
    """A webhook answer's JSON, compact. The run answer (`recorded`'s, one per webhook of a
    burst) is formatted directly, with json's own string escaping: the same bytes as
    `json.dumps`, in a quarter of its time."""
    if tuple(answer) == _RUN_ANSWER:
        run_id, state = answer["run_id"], answer["state"]
        if type(run_id) is str and type(state) is str and type(answer["created"]) is bool:
            return b'{"run_id":%s,"state":%s,"created":%s}' % (
                _json_string(run_id).encode(), _json_string(state).encode(),
                b"true" if answer["created"] else b"false")
    return json.dumps(answer, separators=(",", ":")).encode()


def observe(runtime: Runtime, status: int, started: float) -> None:
    """The answer's time since `started` (perf_counter) into `webhook_seconds`, by status."""
    runtime.metrics.webhook_answered(status, time.perf_counter() - started)


def _secrets(config: AppConfig) -> list[str]:
    server = config.server
    assert server.secret is not None  # create_app refuses to start without one
    return [server.secret.get_secret_value(), *(s.get_secret_value() for s in server.previous_secrets)]


async def _read_body(scope: Scope, receive: Receive) -> bytes | None:
    """The body, or None once it passes MAX_BODY_BYTES (not read further)."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > MAX_BODY_BYTES:
            return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _model(runtime: Runtime, model_id: str) -> ModelConfig | None:
    model = runtime.models_by_id.get(model_id)
    if model is None and len(runtime.services.model_ids) < len(runtime.config.models):
        try:  # some models are configured by name only: ask Numerai once more
            await asyncio.wait_for(runtime.resolve_model_ids(), timeout=10)
        except Exception as exc:  # noqa: BLE001  (best effort: answer 404 below)
            log.warning("resolving model ids by name failed: %s", exc)
        model = runtime.models_by_id.get(model_id)
    return model
