"""The dashboard's pages: the round grid at `/`, a run, a model, and their live fragments.

    GET /                       the round grid and the recent runs
    GET /runs/{run_id}          a run (or the one whose id starts so): its stages,
                                validation, prediction health against the model's band
                                (and, held, Submit anyway / Submit fallback), log lines
                                (404 if unknown, 400 if ambiguous)
    GET /models/{name}          a configured model: settings (secrets masked), its runs, its
                                prediction health over the last rounds as SVG charts (404)
    GET /fragments/grid, /fragments/runs/{run_id}    the parts of those pages that change

Every page needs a signed-in user (else a redirect to `/login`; a fragment answers 401).
Pages are complete HTML without JavaScript. `static/live.js` swaps in the `/fragments/...`
part of a page every two seconds while it may change (polling a small fragment keeps the
server simple and works through any proxy).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from numerai_autopilot.errors import AmbiguousRunId
from numerai_autopilot.runs.held import hold_until
from numerai_autopilot.web.dashboard.health import HEIGHT, WIDTH, health_charts, health_rows
from numerai_autopilot.web.dashboard.pages import dashboard
from numerai_autopilot.web.dashboard.views import (
    load_grids,
    predict_time,
    settings_rows,
    validation_result,
)
from numerai_autopilot.web.state import runtime

router = APIRouter(include_in_schema=False)


async def _grid_context(request: Request) -> dict[str, Any]:
    found, runs = await load_grids(runtime(request))
    return {"grids": found, "recent": runs[:15]}


@router.get("/")
async def index(request: Request) -> Response:
    dash = dashboard(request)
    user, session = dash.require_user(request)
    return dash.render(request, "index.html", await _grid_context(request), session, user)


@router.get("/fragments/grid")
async def grid_fragment(request: Request) -> Response:
    dash = dashboard(request)
    user, session = dash.require_user(request, fragment=True)
    return dash.render(request, "_grid.html", await _grid_context(request), session, user,
                       fragment=True)


async def _run_context(request: Request, run_id: str) -> dict[str, Any]:
    ledger = runtime(request).ledger
    try:
        run = await asyncio.to_thread(ledger.get_by_prefix, run_id)
    except AmbiguousRunId as exc:
        raise HTTPException(400, str(exc)) from exc
    if run is None:
        raise HTTPException(404, f"no run {run_id!r}")
    stages = await asyncio.to_thread(ledger.stages, run.id)
    logs = await asyncio.to_thread(ledger.logs, run.id)
    config = runtime(request).config
    model = config.models.get(run.model_name)
    until = hold_until(run)
    return {"run": run, "stages": stages, "logs": logs,
            "validation": validation_result(run, stages),
            "predict_time": predict_time(run, stages, datetime.now(UTC)),
            "health": health_rows(run, config.health),
            "hold_until": None if until is None else datetime.fromtimestamp(until, UTC),
            "has_fallback": model is not None and model.fallback is not None}


@router.get("/runs/{run_id}")
async def run_page(request: Request, run_id: str) -> Response:
    dash = dashboard(request)
    user, session = dash.require_user(request)
    return dash.render(request, "run.html", await _run_context(request, run_id), session, user)


@router.get("/fragments/runs/{run_id}")
async def run_fragment(request: Request, run_id: str) -> Response:
    dash = dashboard(request)
    user, session = dash.require_user(request, fragment=True)
    return dash.render(request, "_run_live.html", await _run_context(request, run_id), session,
                       user, fragment=True)


@router.get("/models/{name}")
async def model_page(request: Request, name: str) -> Response:
    dash = dashboard(request)
    user, session = dash.require_user(request)
    rt = runtime(request)
    model = rt.config.models.get(name)
    if model is None:
        raise HTTPException(404, f"no model named {name!r} in the configuration")
    runs = await asyncio.to_thread(rt.ledger.runs, limit=100, model_name=name)
    # the name is the page's title and the id its first row (resolved when configured by name)
    context = {"model": model, "settings": settings_rows(model, leave_out=("name", "model_id")),
               "model_id": rt.model_ids.get(name), "runs": runs[:30],
               "charts": health_charts(runs, rt.config.health), "chart_size": (WIDTH, HEIGHT)}
    return dash.render(request, "model.html", context, session, user)
