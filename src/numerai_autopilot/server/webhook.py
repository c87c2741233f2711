"""`POST /pred/{model_id}?token=...`: record the run durably, answer 200 with its id.

Checks, in order, so a rejected request records nothing and leaks nothing:
1. the token (401, the same answer whether or not the model exists);
2. the model is configured (404);
3. the body is at most 64 KiB (413);
4. the body is Numerai's payload (422 naming the field).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from numerai_autopilot.config import AppConfig, ModelConfig
from numerai_autopilot.ledger import NewRun
from numerai_autopilot.runtime import Runtime
from numerai_autopilot.server.payload import MAX_BODY_BYTES, PayloadError, parse_payload
from numerai_autopilot.tokens import verify_token

log = logging.getLogger(__name__)
router = APIRouter()

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


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def _secrets(config: AppConfig) -> list[str]:
    server = config.server
    assert server.secret is not None  # create_app refuses to start without one
    return [server.secret.get_secret_value(), *(s.get_secret_value() for s in server.previous_secrets)]


async def _read_body(request: Request) -> bytes | None:
    """The body, or None once it passes MAX_BODY_BYTES (not read further)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
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


@router.post(
    "/pred/{model_id}",
    summary="Numerai's round-open webhook for one model",
    openapi_extra={
        "parameters": [{"name": "token", "in": "query", "required": True, "schema": {"type": "string"}}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": _PAYLOAD_SCHEMA}}},
    },
    responses={
        200: {"description": "recorded; the run id"},
        401: {"description": "bad token"},
        404: {"description": "unknown model"},
        413: {"description": "body over 64 KiB"},
        422: {"description": "not Numerai's payload; the field is named"},
    },
)
async def receive_webhook(model_id: str, request: Request) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    config = runtime.config
    if not verify_token(request.query_params.get("token"), model_id, _secrets(config)):
        await _read_body(request)  # drained (bounded) so the connection stays reusable
        return _error(401, "invalid or missing token; use the URL from `autopilot webhook-url`")
    model = await _model(runtime, model_id)
    if model is None:
        await _read_body(request)
        return _error(404, "no configured model has this id; check models.*.model_id")
    body = await _read_body(request)
    if body is None:
        return _error(413, f"body larger than {MAX_BODY_BYTES // 1024} KiB")
    try:
        payload = parse_payload(body)
    except PayloadError as exc:
        return _error(422, str(exc), field=exc.field)
    new = NewRun(
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
    run, created = await runtime.recorder.record(new)
    if created:
        runtime.dispatcher.wake()
        log.info("webhook for %s round %s: run %s", model.name, payload.roundNumber, run.id)
    return JSONResponse({"run_id": run.id, "state": run.state.value, "created": created})
