"""`GET /api/rounds` and `GET /api/models`: what the dashboard shows, as JSON.

Included into `server.api`'s `/api` router, so the same admin guard applies.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel

from numerai_autopilot.ledger import RunState
from numerai_autopilot.observe.metrics import CONTENT_TYPE
from numerai_autopilot.web.auth import require_admin
from numerai_autopilot.web.dashboard.pages import runtime
from numerai_autopilot.web.dashboard.routes import grids
from numerai_autopilot.web.dashboard.views import STATUSES, public_settings

router = APIRouter(tags=["api"])


class CellView(BaseModel):
    status: str
    state: str
    run_id: str | None
    after_open_s: float | None
    error: str | None


class RoundView(BaseModel):
    """One round of one tournament, with each configured model's status in it."""

    tournament: int
    number: int
    open_time: datetime | None
    close_time: datetime | None
    models: dict[str, CellView]


class LastSubmission(BaseModel):
    run_id: str
    round: int | None
    submission_id: str | None
    at: datetime


class ModelView(BaseModel):
    """A configured model (no secrets) and its latest submitted run."""

    name: str
    model_id: str | None
    tournament: int
    settings: dict[str, Any]
    last_submission: LastSubmission | None


@router.get("/rounds", response_model=list[RoundView],
            description=f"Recent rounds, newest first; statuses: {', '.join(STATUSES)}.")
async def list_rounds(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=100)] = 8,
    tournament: int | None = None,
) -> list[RoundView]:
    found, _ = await grids(runtime(request), max_rounds=limit)
    return [
        RoundView(
            tournament=grid.tournament, number=row.number, open_time=row.open_time,
            close_time=row.close_time,
            models={c.model: CellView(status=c.status, state=c.label, run_id=c.run_id,
                                      after_open_s=c.after_open_s, error=c.error)
                    for c in row.cells},
        )
        for grid in found if tournament is None or grid.tournament == tournament
        for row in grid.rounds
    ]


@router.get("/models", response_model=list[ModelView])
async def list_models(request: Request) -> list[ModelView]:
    rt = runtime(request)
    views = []
    for name, model in sorted(rt.config.models.items()):
        latest = await asyncio.to_thread(
            rt.ledger.runs, limit=1, model_name=name, states=[RunState.SUBMITTED]
        )
        last = (LastSubmission(run_id=latest[0].id, round=latest[0].round_number,
                               submission_id=latest[0].submission_id, at=latest[0].updated_at)
                if latest else None)
        views.append(ModelView(
            name=name, model_id=rt.services.model_ids.get(name), tournament=model.tournament_id,
            settings={k: (str(v) if hasattr(v, "__fspath__") else v)
                      for k, v in public_settings(model).items()},
            last_submission=last,
        ))
    return views


metrics_router = APIRouter()


@metrics_router.get(
    "/metrics", dependencies=[Depends(require_admin)], response_class=PlainTextResponse,
    summary="Prometheus metrics (text format)", tags=["metrics"],
)
async def metrics(request: Request) -> Response:
    body = await runtime(request).metrics.render()
    return Response(body, media_type=CONTENT_TYPE)
