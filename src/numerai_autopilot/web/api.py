"""Health and the JSON API under `/api` (runs, their stages and log lines)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel

from numerai_autopilot.ledger import Run, RunState
from numerai_autopilot.runtime import Runtime
from numerai_autopilot.web.auth import require_admin
from numerai_autopilot.web.dashboard import api as dashboard_api

router = APIRouter()
# Larger integers overflow the databases' BIGINT (an answer of 500, not 422): refuse them here.
_MAX_DB_INT = 2**63 - 1
api = APIRouter(prefix="/api", dependencies=[Depends(require_admin)], tags=["api"])


class RunView(BaseModel):
    """A run as the API shows it (no owner or lease internals)."""

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

    @classmethod
    def of(cls, run: Run) -> RunView:
        return cls(
            id=run.id, model=run.model_name, model_id=run.model_id, tournament=run.tournament,
            round=run.round_number, trigger_id=run.trigger_id, is_test=run.is_test,
            source=run.source, state=run.state.value, attempts=run.attempts, error=run.error,
            submission_id=run.submission_id, created_at=run.created_at,
            updated_at=run.updated_at, detail=run.detail,
        )


class StageView(BaseModel):
    state: str
    attempt: int
    started_at: datetime
    ended_at: datetime | None
    error: str | None


class LogView(BaseModel):
    id: int
    at: datetime
    level: str
    message: str


class Health(BaseModel):
    status: str
    executor_ready: bool
    active_runs: int


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


@router.get("/healthz", response_model=Health)
async def health(request: Request) -> Health:
    runtime = _runtime(request)
    return Health(status="ok", executor_ready=runtime.ready.is_set(),
                  active_runs=runtime.dispatcher.active)


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
    ledger = _runtime(request).ledger
    if model_id is not None and trigger_id is not None:  # `autopilot trigger --wait`
        found = await asyncio.to_thread(ledger.find, model_id, trigger_id)
        return [RunView.of(found)] if found is not None else []
    runs = await asyncio.to_thread(
        ledger.runs, limit=limit, model_name=model, round_number=round,
        states=[state] if state else None,
    )
    return [RunView.of(run) for run in runs]


@api.get("/runs/{run_id}", response_model=RunView)
async def get_run(request: Request, run_id: str) -> RunView:
    run = await asyncio.to_thread(_runtime(request).ledger.get, run_id)
    if run is None:
        raise HTTPException(404, f"no run {run_id!r}")
    return RunView.of(run)


@api.get("/runs/{run_id}/stages", response_model=list[StageView])
async def get_stages(request: Request, run_id: str) -> list[StageView]:
    stages = await asyncio.to_thread(_runtime(request).ledger.stages, run_id)
    return [StageView(state=s.state.value, attempt=s.attempt, started_at=s.started_at,
                      ended_at=s.ended_at, error=s.error) for s in stages]


@api.get("/runs/{run_id}/logs", response_model=list[LogView])
async def get_logs(
    request: Request, run_id: str, after: Annotated[int, Query(ge=0, le=_MAX_DB_INT)] = 0
) -> list[LogView]:
    lines = await asyncio.to_thread(_runtime(request).ledger.logs, run_id, after_id=after)
    return [LogView(id=line.id, at=line.at, level=line.level, message=line.message) for line in lines]


api.include_router(dashboard_api.router)  # /api/rounds, /api/models
router.include_router(api)
