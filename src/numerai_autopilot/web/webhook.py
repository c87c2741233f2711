"""`POST /pred/{model_id}?token=...`: Numerai's round-open webhook, recorded before it is answered.

The checks run in this order, so a refused request records nothing and tells nothing:
1. the token (401, the same answer whether or not the model exists);
2. the model is configured (404);
3. the body is at most 64 KiB (413);
4. the body is Numerai's payload (422 naming the field).

Then the run is committed to the ledger and the answer is 200 with its id. A ledger that
cannot record the run answers 503 (nothing was kept, so Numerai or `autopilot trigger` may
send it again), any other failure 500; both are logged. Refusals answer
`{"error": ..., "field": ...}`; every answer's time goes to the `webhook_seconds` metric.
"""

from __future__ import annotations

import logging
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from numerai_autopilot.config import ModelConfig
from numerai_autopilot.config.tokens import verify_token
from numerai_autopilot.errors import AutopilotError, LedgerError
from numerai_autopilot.runs import new_run
from numerai_autopilot.runtime import Runtime
from numerai_autopilot.web.payload import (
    MAX_BODY_BYTES,
    PayloadError,
    WebhookPayload,
    parse_payload,
)

log = logging.getLogger(__name__)
router = APIRouter(tags=["webhook"])


class WebhookAnswer(BaseModel):
    """The answer to a recorded webhook: the run, and whether this webhook created it."""

    run_id: str
    state: str
    created: bool


class WebhookRefused(AutopilotError):
    """A webhook answered with `status` and `{"error": message, "field": field}`."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field


def install(app: FastAPI) -> None:
    """Add the webhook's route and the handler that answers its refusals."""
    app.include_router(router)
    app.add_exception_handler(WebhookRefused, _refused)  # type: ignore[arg-type]


async def started(request: Request) -> float:
    """When the webhook's handling began (for `webhook_seconds`); the first dependency."""
    request.state.webhook_started = time.perf_counter()
    return request.state.webhook_started  # type: ignore[no-any-return]


async def runtime(request: Request) -> Runtime:
    """The app's runtime; 503 while the server is still starting (Numerai retries)."""
    found: Runtime | None = getattr(request.app.state, "runtime", None)
    if found is None:
        raise WebhookRefused(503, "the server is starting; send it again")
    return found


async def webhook_model(
    model_id: str,
    service: Annotated[Runtime, Depends(runtime)],
    token: Annotated[str | None, Query(description="the model's webhook token")] = None,
) -> ModelConfig:
    """The configured model whose webhook this is, once its token is checked (401, 404)."""
    if not verify_token(token, model_id, service.config.server.webhook_secrets()):
        raise WebhookRefused(401, "invalid or missing token; use the URL from `autopilot webhook-url`")
    model = await service.model_ids.model_for_id(model_id, service.client)
    if model is None:
        raise WebhookRefused(404, "no configured model has this id; check models.*.model_id")
    return model


async def webhook_payload(
    request: Request, model: Annotated[ModelConfig, Depends(webhook_model)]
) -> WebhookPayload:
    """The body as Numerai's payload (413 when too large, 422 naming the field), read only
    once the token and the model are known to be good."""
    body = bytearray()
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise WebhookRefused(413, f"body larger than {MAX_BODY_BYTES // 1024} KiB")
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise WebhookRefused(413, f"body larger than {MAX_BODY_BYTES // 1024} KiB")
    try:
        return parse_payload(bytes(body))
    except PayloadError as exc:
        raise WebhookRefused(422, str(exc), exc.field) from None


@router.post(
    "/pred/{model_id}",
    response_model=WebhookAnswer,
    summary="Numerai's round-open webhook for one model",
    responses={
        401: {"description": "bad token"},
        404: {"description": "unknown model"},
        413: {"description": "body over 64 KiB"},
        422: {"description": "not Numerai's payload; the field is named"},
        503: {"description": "the run could not be recorded; send it again"},
    },
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
        "schema": WebhookPayload.model_json_schema()}}}},
)
async def receive_webhook(
    model_id: str,
    since: Annotated[float, Depends(started)],
    service: Annotated[Runtime, Depends(runtime)],
    model: Annotated[ModelConfig, Depends(webhook_model)],
    payload: Annotated[WebhookPayload, Depends(webhook_payload)],
) -> WebhookAnswer:
    """Record the run the webhook asks for; 200 once it is committed."""
    requested = new_run(model, model_id, source="webhook", round_number=payload.round_number,
                        trigger_id=payload.triggerId, is_test=payload.is_test)
    try:
        run, created = await service.recorder.record(requested)
    except LedgerError as exc:
        log.error("webhook for model id %s: the run could not be recorded: %s", model_id, exc)
        raise WebhookRefused(503, "the run could not be recorded (the ledger failed; the server "
                                  "log says why); nothing was kept, so send it again") from exc
    except Exception as exc:  # answered like every refusal (JSON, counted), and logged
        log.exception("webhook for model id %s failed", model_id)
        raise WebhookRefused(500, "internal error; see the server log") from exc
    if created:
        service.dispatcher.wake()
        log.info("webhook for %s round %s: run %s", model.name,
                 "test" if requested.round_number is None else requested.round_number, run.id)
    service.metrics.webhook_answered(200, time.perf_counter() - since)
    return WebhookAnswer(run_id=run.id, state=run.state.value, created=created)


async def _refused(request: Request, exc: WebhookRefused) -> JSONResponse:
    service: Runtime | None = getattr(request.app.state, "runtime", None)
    since: float | None = getattr(request.state, "webhook_started", None)
    if service is not None and since is not None:
        service.metrics.webhook_answered(exc.status, time.perf_counter() - since)
    answer: dict[str, Any] = {"error": str(exc)}
    if exc.field is not None:
        answer["field"] = exc.field
    return JSONResponse(answer, status_code=exc.status)
