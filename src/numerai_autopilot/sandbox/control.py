"""The control API under ``/_sandbox/``: drive the sandbox and read what it recorded.

Not part of Numerai's API and needs no key: it is for tests and the demo, which is one reason
the sandbox binds to 127.0.0.1 by default.

    GET    /_sandbox/state            account, models (webhook URLs redacted), rounds
    POST   /_sandbox/rounds/open      {"tournament": 8, "length_s": 3600} -> the new round; fires webhooks
    POST   /_sandbox/rounds/close     {"tournament": 8} -> the closed round
    GET    /_sandbox/submissions      ?model_id=&tournament= recorded submissions
    GET    /_sandbox/uploads          PUTs received (accepted or refused)
    GET    /_sandbox/downloads        dataset downloads (file, round, bytes, completed)
    GET    /_sandbox/webhooks         webhook deliveries (url redacted, payload, status/error)
    GET    /_sandbox/webhooks/body    the bodies' shapes: {"default": ..., "models": {id: ...}}
    POST   /_sandbox/webhooks/body    {"body": "cli_mock", "model": "alpha"} -> the shapes; without
                                      "model", every model without a shape of its own
    GET    /_sandbox/faults           current faults and the faults injected so far
    POST   /_sandbox/faults           set faults (JSON documented in faults.py)
    DELETE /_sandbox/faults           clear faults
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta
from typing import Any

import anyio
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .faults import FaultConfig
from .graphql_api import round_view
from .settings import TOURNAMENTS
from .state import ROUND_LENGTH, Sandbox
from .webhooks import body_shape


def to_json(value: Any) -> Any:
    """Dataclasses, datetimes, lists and dicts as JSON-ready values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    return value


def _sandbox(request: Request) -> Sandbox:
    sandbox: Sandbox = request.app.state.sandbox
    return sandbox


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _tournament(request: Request) -> int | JSONResponse:
    raw = await request.body()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return _error(400, "body must be JSON, e.g. {\"tournament\": 8}")
    tournament = body.get("tournament", 8) if isinstance(body, dict) else None
    if tournament not in TOURNAMENTS:
        return _error(400, f"tournament must be one of {sorted(TOURNAMENTS)}, got {tournament!r}")
    return int(tournament)


async def _length(request: Request) -> timedelta | JSONResponse:
    """`length_s` of the body: how long the round stays open (default one hour)."""
    body = json.loads(await request.body() or b"{}")
    length = body.get("length_s", ROUND_LENGTH.total_seconds()) if isinstance(body, dict) else None
    if isinstance(length, bool) or not isinstance(length, int | float) or length <= 0:
        return _error(400, f"length_s must be a positive number of seconds, got {length!r}")
    return timedelta(seconds=length)


async def state(request: Request) -> Response:
    sandbox = _sandbox(request)
    with sandbox.lock:
        rounds = {str(t): [round_view(r) for r in rs] for t, rs in sandbox.rounds.items()}
        current = {str(t): round_view(rs[-1]) for t, rs in sandbox.rounds.items()}
    return JSONResponse({
        "account": sandbox.account_view(), "current_rounds": current, "rounds": rounds,
        "datasets": {str(t): sandbox.data.filenames(t) for t in TOURNAMENTS},
    })


async def open_round(request: Request) -> Response:
    sandbox = _sandbox(request)
    tournament = await _tournament(request)
    if isinstance(tournament, JSONResponse):
        return tournament
    # Generating the live files may take a second at full size: keep the loop free.
    length = await _length(request)
    if isinstance(length, JSONResponse):
        return length
    await anyio.to_thread.run_sync(sandbox.prepare_next_round, tournament)
    rnd, notify = sandbox.open_round(tournament, length)
    deliveries = sandbox.fire_round_open(rnd, notify)
    return JSONResponse({**round_view(rnd),
                         "webhooks": [to_json(d) for d in deliveries]})


async def close_round(request: Request) -> Response:
    tournament = await _tournament(request)
    if isinstance(tournament, JSONResponse):
        return tournament
    return JSONResponse(round_view(_sandbox(request).close_round(tournament)))


async def submissions(request: Request) -> Response:
    sandbox = _sandbox(request)
    model_id = request.query_params.get("model_id")
    tournament = request.query_params.get("tournament")
    with sandbox.lock:
        found = list(sandbox.submissions)
    if model_id:
        found = [s for s in found if s.model_id == model_id]
    if tournament:
        found = [s for s in found if str(s.tournament) == tournament]
    return JSONResponse(to_json(found))


async def uploads(request: Request) -> Response:
    sandbox = _sandbox(request)
    with sandbox.lock:
        return JSONResponse(to_json(list(sandbox.uploads)))


async def downloads(request: Request) -> Response:
    sandbox = _sandbox(request)
    with sandbox.lock:
        return JSONResponse(to_json(list(sandbox.downloads)))


async def webhooks(request: Request) -> Response:
    return JSONResponse(to_json(_sandbox(request).webhooks.snapshot()))


async def webhook_body(request: Request) -> Response:
    """Read or set the shape of webhook bodies (`webhooks.BodyShape`), for one model (by
    name or id) or as the default."""
    sandbox = _sandbox(request)
    if request.method == "POST":
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            return _error(400, 'body must be JSON, e.g. {"body": "cli_mock", "model": "alpha"}')
        if not isinstance(body, dict):
            return _error(400, 'body must be a JSON object, e.g. {"body": "cli_mock"}')
        try:
            shape = body_shape(str(body.get("body", "")))
        except ValueError as exc:
            return _error(400, str(exc))
        model = body.get("model")
        model_id = None if model is None else _model_id(sandbox, str(model))
        if model is not None and model_id is None:
            return _error(400, f"no model named or with id {model!r} in this sandbox")
        sandbox.webhooks.set_shape(shape, model_id)
    return JSONResponse(sandbox.webhooks.shapes_view())


def _model_id(sandbox: Sandbox, name_or_id: str) -> str | None:
    with sandbox.lock:
        for model in sandbox.models.values():
            if name_or_id in (model.name, model.id):
                return model.id
    return None


async def faults(request: Request) -> Response:
    sandbox = _sandbox(request)
    if request.method == "DELETE":
        sandbox.faults.clear()
    elif request.method == "POST":
        raw = await request.body()
        try:
            config = FaultConfig.model_validate_json(raw or b"{}")
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
                for e in exc.errors()
            )
            return _error(422, f"invalid faults: {problems}")
        sandbox.faults.set(config)
    return JSONResponse(sandbox.faults.view())


ROUTES = [
    Route("/_sandbox/state", state, methods=["GET"]),
    Route("/_sandbox/rounds/open", open_round, methods=["POST"]),
    Route("/_sandbox/rounds/close", close_round, methods=["POST"]),
    Route("/_sandbox/submissions", submissions, methods=["GET"]),
    Route("/_sandbox/uploads", uploads, methods=["GET"]),
    Route("/_sandbox/downloads", downloads, methods=["GET"]),
    Route("/_sandbox/webhooks", webhooks, methods=["GET"]),
    Route("/_sandbox/webhooks/body", webhook_body, methods=["GET", "POST"]),
    Route("/_sandbox/faults", faults, methods=["GET", "POST", "DELETE"]),
]
