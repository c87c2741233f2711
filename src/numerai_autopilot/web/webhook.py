"""`POST /pred/{model_id}/{token}` (or `/pred/{model_id}?token=...`): Numerai's round-open
webhook, recorded before it is answered.

A request with a valid token for a configured model is a round for that model. The checks
run in this order, so a refused request records nothing and tells nothing:
1. the token, in the path or the query (401): an HMAC of the model id from the URL, compared
   in constant time before the model is looked up, so a wrong token for a configured model
   and any token for an unknown id take the same path, time and answer;
2. the model is configured (404: only a request with a valid token gets this far);
3. the body is at most 64 KiB (413);
4. the body is a JSON object (422, saying why and what to send); its fields are read as
   `web.payload` says, and none of them is a reason to refuse it.

Then the run is committed to the ledger and the answer is 200 with its id. What the body
did not tell is logged as a warning and filled in: no readable round is the current round,
no usable trigger id gets one of ours. A ledger that cannot record the run answers 503
(nothing was kept, so Numerai or `autopilot trigger` may send it again), any other failure
500; both are logged. Refusals answer `{"error": ..., "field": ...}`; every answer's time
goes to the `webhook_seconds` metric. The token is never logged: the server runs without an
access log (`cli/commands_serve.py`) and no line here prints the URL.
"""

from __future__ import annotations

import logging
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from numerai_autopilot.config import ModelConfig
from numerai_autopilot.config.tokens import verify_token
from numerai_autopilot.errors import AutopilotError, LedgerError
from numerai_autopilot.ledger import NewRun
from numerai_autopilot.runs import new_run
from numerai_autopilot.web.payload import (
    MAX_BODY_BYTES,
    PayloadError,
    WebhookBody,
    WebhookPayload,
    parse_payload,
)
from numerai_autopilot.web.state import runtime

log = logging.getLogger(__name__)
router = APIRouter(tags=["webhook"])


class WebhookAnswer(BaseModel):
    """The answer to a recorded webhook: the run, its trigger id (Numerai's, or ours when
    the body had none), and whether this webhook created it."""

    run_id: str
    trigger_id: str
    state: str
    created: bool


class WebhookRefused(AutopilotError):
    """A webhook answered with `status` and `{"error": message, "field": field}`."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field


def install(app: FastAPI) -> None:
    """Add the webhook's routes and the handler that answers its refusals."""
    app.include_router(router)
    app.add_exception_handler(WebhookRefused, _refused)  # type: ignore[arg-type]


async def started(request: Request) -> float:
    """When the webhook's handling began (for `webhook_seconds`); the first dependency.
    Raises ServerStarting (503) before the runtime is open."""
    runtime(request)
    request.state.webhook_started = time.perf_counter()
    return request.state.webhook_started  # type: ignore[no-any-return]


async def webhook_model(request: Request, model_id: str, token: str | None = None) -> ModelConfig:
    """The configured model whose webhook this is, once its token is checked (401, 404).

    `token` is the path's last segment on `/pred/{model_id}/{token}`, the query's `token`
    on `/pred/{model_id}`.
    """
    service = runtime(request)
    if not verify_token(token, model_id, service.config.server.webhook_secrets()):
        raise WebhookRefused(401, "invalid or missing token; use the URL from `autopilot webhook-url`")
    model = await service.model_ids.model_for_id(model_id, service.client)
    if model is None:
        raise WebhookRefused(404, "no configured model has this id; check models.*.model_id")
    return model


async def webhook_payload(
    request: Request, model: Annotated[ModelConfig, Depends(webhook_model)]
) -> WebhookPayload:
    """The body, read (413 when too large, 422 when not a JSON object) only once the token
    and the model are known to be good."""
    too_large = (f"body larger than {MAX_BODY_BYTES // 1024} KiB; send Numerai's webhook body, "
                 "a small JSON object such as {\"roundNumber\": 371, \"triggerId\": \"...\"}")
    body = bytearray()
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise WebhookRefused(413, too_large)
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise WebhookRefused(413, too_large)
    try:
        return parse_payload(bytes(body))
    except PayloadError as exc:
        raise WebhookRefused(422, str(exc), exc.field) from None


_ANSWERS: dict[int | str, dict[str, Any]] = {
    401: {"description": "bad or missing token"},
    404: {"description": "unknown model"},
    413: {"description": "body over 64 KiB"},
    422: {"description": "the body is not a JSON object"},
    503: {"description": "the run could not be recorded; send it again"},
}
_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": WebhookBody.model_json_schema()}}}}


@router.post("/pred/{model_id}/{token}", response_model=WebhookAnswer, responses=_ANSWERS,
             summary="Numerai's round-open webhook for one model (the token in the path)",
             openapi_extra=_BODY)
@router.post("/pred/{model_id}", response_model=WebhookAnswer, responses=_ANSWERS,
             summary="Numerai's round-open webhook for one model (the token in the query)",
             openapi_extra=_BODY)
async def receive_webhook(
    request: Request,
    model_id: str,
    since: Annotated[float, Depends(started)],
    model: Annotated[ModelConfig, Depends(webhook_model)],
    payload: Annotated[WebhookPayload, Depends(webhook_payload)],
) -> WebhookAnswer:
    """Record the run the webhook asks for; 200 once it is committed."""
    service = runtime(request)
    requested = new_run(model, model_id, source="webhook", round_number=payload.round_number,
                        trigger_id=payload.trigger_id, is_test=payload.is_test,
                        webhook_body=payload.raw)
    if payload.unreadable:
        _warn_unreadable(requested, payload)
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
        log.info("webhook for %s round %s: run %s", model.name, _round_label(requested), run.id)
    service.metrics.webhook_answered(200, time.perf_counter() - since)
    return WebhookAnswer(run_id=run.id, trigger_id=run.trigger_id, state=run.state.value,
                         created=created)


def _warn_unreadable(requested: NewRun, payload: WebhookPayload) -> None:
    """Say what the body did not tell and what was used instead (never the URL or token)."""
    log.warning("webhook for %s (model id %s): could not read %s from the body; recorded for "
                "round %s with trigger id %s", requested.model_name, requested.model_id,
                ", ".join(payload.unreadable), _round_label(requested), requested.trigger_id)


def _round_label(requested: NewRun) -> str:
    if requested.is_test:
        return "test" if requested.round_number is None else f"{requested.round_number} (test)"
    return "(current)" if requested.round_number is None else str(requested.round_number)


async def _refused(request: Request, exc: WebhookRefused) -> JSONResponse:
    since: float | None = getattr(request.state, "webhook_started", None)
    if since is not None:  # counted once the handling began (the runtime was there)
        runtime(request).metrics.webhook_answered(exc.status, time.perf_counter() - since)
    answer: dict[str, Any] = {"error": str(exc)}
    if exc.field is not None:
        answer["field"] = exc.field
    return JSONResponse(answer, status_code=exc.status)
