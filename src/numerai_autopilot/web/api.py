"""What programs read: `/healthz`, `/metrics` and the JSON API under `/api`.

- `GET /healthz`: whether the server is up and its executor ready; open to anyone (a load
  balancer's probe).
- `GET /metrics`: Prometheus' text format.
- `GET /api/runs[/{id}[/stages|/logs]]`, `/api/rounds`, `/api/models`: the runs, the recent
  rounds with each model's status, the configured models. `{id}` may be the start of a run's
  id that no other run's id starts with (as `autopilot runs` shows ids): 400 when several do.

`/metrics` and `/api` need the admin token or a signed-in dashboard session
(`web.auth.require_admin`); `/metrics` is open with `server.metrics_public`. Each answer is
a view of its own (`RunView`, `RoundView`, ...), so leases, owners and secrets stay out.
Unknown ids answer 404; out-of-range query values 422.

    curl -H "Authorization: Bearer $AUTOPILOT_ADMIN_TOKEN" "http://127.0.0.1:8000/api/runs?limit=5"
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel

from numerai_autopilot.errors import AmbiguousRunId
from numerai_autopilot.ledger import Run, RunState
from numerai_autopilot.web.auth import require_admin, require_metrics_reader
from numerai_autopilot.web.dashboard.views import STATUSES, load_grids, public_settings
from numerai_autopilot.web.state import runtime as _runtime

# Larger integers overflow the databases' BIGINT (an answer of 500, not 422): refuse them here.
_MAX_DB_INT = 2**63 - 1

router = APIRouter()
api = APIRouter(prefix="/api", dependencies=[Depends(require_admin)], tags=["api"])


class Health(BaseModel):
    """`status` is always "ok" (the server answers); runs wait for `executor_ready`."""

    status: str
    executor_ready: bool
    active_runs: int


class RunView(BaseModel):
    """A run as the API shows it (no owner or lease internals); `webhook_body` is the start
    of the body of the webhook that asked for it (None for other runs)."""

    id: str
    model: str
    model_id: str
    tournament: int
    round: int | None
    trigger_id: str
    is_test: bool
    source: str
    state: str
    attempts: int
    error: str | None
    submission_id: str | None
    created_at: datetime
    updated_at: datetime
    detail: dict[str, Any]
    webhook_body: str | None

    @classmethod
    def of(cls, run: Run) -> RunView:
        return cls(
            id=run.id, model=run.model_name, model_id=run.model_id, tournament=run.tournament,
            round=run.round_number, trigger_id=run.trigger_id, is_test=run.is_test,
            source=run.source, state=run.state.value, attempts=run.attempts, error=run.error,
            submission_id=run.submission_id, created_at=run.created_at,
            updated_at=run.updated_at, detail=run.detail, webhook_body=run.webhook_body,
        )


class StageView(BaseModel):
    """One stage of a run (`ended_at` None while it runs)."""

    state: str
    attempt: int
    started_at: datetime
    ended_at: datetime | None
    error: str | None


class LogView(BaseModel):
    """One log line of a run; ids grow, so `after` pages through them."""

    id: int
    at: datetime
    level: str
    message: str


class CellView(BaseModel):
    """One model in one round: `status` in the dashboard's words, `state` the run's."""

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
    """A model's latest submitted run (`at`: when it was submitted)."""

    run_id: str
    round: int | None
    submission_id: str | None
    at: datetime


class ModelView(BaseModel):
    """A configured model (secrets masked) and its latest submitted run."""

    name: str
    model_id: str | None
    tournament: int
    settings: dict[str, Any]
    last_submission: LastSubmission | None


@router.get("/healthz", response_model=Health)
async def health(request: Request) -> Health:
    """Up; whether the executor is ready and how many runs are in progress."""
    runtime = _runtime(request)
    return Health(status="ok", executor_ready=runtime.ready.is_set(),
                  active_runs=runtime.dispatcher.active)


@router.get(
    "/metrics", dependencies=[Depends(require_metrics_reader)], response_class=PlainTextResponse,
    summary="Prometheus metrics (text format)", tags=["metrics"],
)
async def metrics(request: Request) -> Response:
    """The runtime's metrics (`observe.metrics` lists them), scraped by Prometheus."""
    body = await _runtime(request).metrics.render()
    return Response(body, media_type=CONTENT_TYPE_LATEST)


@api.get("/runs", response_model=list[RunView])
async def list_runs(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    model: str | None = None,
    round: Annotated[int | None, Query(ge=0, le=_MAX_DB_INT)] = None,
    state: RunState | None = None,
    model_id: str | None = None,
    trigger_id: str | None = None,
) -> list[RunView]:
    """Recent runs, newest first, filtered by model name, round and state; with both
    `model_id` and `trigger_id`, the one run of that trigger (`autopilot trigger --wait`)."""
    ledger = _runtime(request).ledger
    if model_id is not None and trigger_id is not None:
        found = await asyncio.to_thread(ledger.find, model_id, trigger_id)
        return [RunView.of(found)] if found is not None else []
    runs = await asyncio.to_thread(
        ledger.runs, limit=limit, model_name=model, round_number=round,
        states=[state] if state else None,
    )
    return [RunView.of(run) for run in runs]


async def _run_of(request: Request, run_id: str) -> Run:
    """The run `run_id` is the id of, or the start of (HTTPException 404 or 400 when
    ambiguous)."""
    try:
        run = await asyncio.to_thread(_runtime(request).ledger.get_by_prefix, run_id)
    except AmbiguousRunId as exc:
        raise HTTPException(400, str(exc)) from exc
    if run is None:
        raise HTTPException(404, f"no run {run_id!r}")
    return run


@api.get("/runs/{run_id}", response_model=RunView)
async def get_run(request: Request, run_id: str) -> RunView:
    """One run, by its id or the start of it; 404 if there is none, 400 if several runs'
    ids start with it."""
    return RunView.of(await _run_of(request, run_id))


@api.get("/runs/{run_id}/stages", response_model=list[StageView])
async def get_stages(request: Request, run_id: str) -> list[StageView]:
    """The stages the run went through, in order (a retried stage once per attempt)."""
    run = await _run_of(request, run_id)
    stages = await asyncio.to_thread(_runtime(request).ledger.stages, run.id)
    return [StageView(state=s.state.value, attempt=s.attempt, started_at=s.started_at,
                      ended_at=s.ended_at, error=s.error) for s in stages]


@api.get("/runs/{run_id}/logs", response_model=list[LogView])
async def get_logs(
    request: Request, run_id: str, after: Annotated[int, Query(ge=0, le=_MAX_DB_INT)] = 0
) -> list[LogView]:
    """The run's log lines with an id above `after` (to follow a run, pass the last id seen)."""
    run = await _run_of(request, run_id)
    lines = await asyncio.to_thread(_runtime(request).ledger.logs, run.id, after_id=after)
    return [LogView(id=line.id, at=line.at, level=line.level, message=line.message) for line in lines]


@api.get("/rounds", response_model=list[RoundView],
         description=f"Recent rounds, newest first; statuses: {', '.join(STATUSES)}.")
async def list_rounds(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=100)] = 8,
    tournament: int | None = None,
) -> list[RoundView]:
    grids, _ = await load_grids(_runtime(request), max_rounds=limit)
    return [
        RoundView(
            tournament=grid.tournament, number=row.number, open_time=row.open_time,
            close_time=row.close_time,
            models={c.model: CellView(status=c.status, state=c.label, run_id=c.run_id,
                                      after_open_s=c.after_open_s, error=c.error)
                    for c in row.cells},
        )
        for grid in grids if tournament is None or grid.tournament == tournament
        for row in grid.rounds
    ]


@api.get("/models", response_model=list[ModelView])
async def list_models(request: Request) -> list[ModelView]:
    """Every configured model, by name, with its latest submitted run."""
    runtime = _runtime(request)
    views = []
    for name, model in sorted(runtime.config.models.items()):
        latest = await asyncio.to_thread(
            runtime.ledger.runs, limit=1, model_name=name, states=[RunState.SUBMITTED]
        )
        last = (LastSubmission(run_id=latest[0].id, round=latest[0].round_number,
                               submission_id=latest[0].submission_id, at=latest[0].updated_at)
                if latest else None)
        views.append(ModelView(
            name=name, model_id=runtime.model_ids.get(name),
            tournament=model.tournament_id, settings=public_settings(model),
            last_submission=last,
        ))
    return views


router.include_router(api)
