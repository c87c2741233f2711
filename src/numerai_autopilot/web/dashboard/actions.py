"""The dashboard's forms: sign in and out, run a model now, fire a test trigger, re-run,
submit a held run (its kept predictions or its fallback).

A form is bounded before it is read: 411 when chunked (no Content-Length), 413 over
`MAX_FORM_BYTES`, 400 with more than `MAX_FORM_FIELDS` fields or a file, 408 (and the
connection closed) when its body has not all arrived `FORM_TIMEOUT_S` after its headers
(a client trickling a form would hold a connection for hours). Every POST carries
the session's CSRF token (403 without it), checked right after; each action answers with a
redirect (303) to the page that shows its result, and a one-time message. Too many failed
sign-ins answer 429 with `Retry-After` (`session.Sessions.sign_in`); `GET /login?code=...`
exchanges the one-time code `autopilot serve` printed for a signed-in session.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from numerai_autopilot.config import ModelConfig
from numerai_autopilot.errors import AutopilotError
from numerai_autopilot.ledger import RunState
from numerai_autopilot.runs import new_run
from numerai_autopilot.runs.held import approve
from numerai_autopilot.runtime import Runtime
from numerai_autopilot.web.dashboard.pages import Dashboard, dashboard, safe_next
from numerai_autopilot.web.dashboard.session import Session
from numerai_autopilot.web.dashboard.throttle import TooManySignIns
from numerai_autopilot.web.state import runtime

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
MAX_FORM_BYTES = 4096
MAX_FORM_FIELDS = 8
FORM_TIMEOUT_S = 10.0


async def _form(request: Request, session: Session) -> dict[str, Any]:
    """The POST's form, bounded before it is read, once its CSRF token is checked."""
    if "transfer-encoding" in request.headers:  # no length to check before reading
        raise HTTPException(411, "a dashboard form is sent with a Content-Length")
    declared = request.headers.get("content-length", "0")
    if not declared.isdigit() or int(declared) > MAX_FORM_BYTES:
        raise HTTPException(413, f"a dashboard form is at most {MAX_FORM_BYTES} bytes")
    reading = request.form(max_files=0, max_fields=MAX_FORM_FIELDS, max_part_size=MAX_FORM_BYTES)
    try:
        form = dict(await asyncio.wait_for(reading, FORM_TIMEOUT_S))
    except TimeoutError:
        raise HTTPException(408, f"the form did not arrive within {FORM_TIMEOUT_S:g} s",
                            headers={"Connection": "close"}) from None
    dashboard(request).sessions.check_csrf(session, form.get("csrf"))
    return form


@router.get("/login")
async def login_page(request: Request) -> Response:
    dash = dashboard(request)
    session = dash.sessions.load(request)
    target = safe_next(request.query_params.get("next"))
    code = request.query_params.get("code")
    if code is not None:
        signed_in = dash.sessions.redeem(code)
        if signed_in is not None:
            log.info("dashboard: signed in with the one-time sign-in link")
            return dash.redirect(request, target, signed_in, None)
        context = {"next": target, "error": "This sign-in link is used up or not this "
                   "server's: restart the server for a new one, or sign in below."}
        return dash.render(request, "login.html", context, session, None, status=401)
    if dash.sessions.user(session) is not None:
        return dash.redirect(request, target, session, session.flash)
    return dash.render(request, "login.html", {"next": target, "error": None}, session, None)


@router.post("/login")
async def login(request: Request) -> Response:
    dash = dashboard(request)
    session = dash.sessions.load(request)
    form = await _form(request, session)
    target = safe_next(form.get("next"))
    address = request.client.host if request.client else "unknown"
    try:
        signed_in = await dash.sessions.sign_in(str(form.get("username", "")).strip(),
                                                str(form.get("password", "")), address)
    except TooManySignIns as exc:
        refused = dash.render(request, "login.html", {"next": target, "error": str(exc)},
                              session, None, status=429)
        refused.headers["Retry-After"] = str(exc.retry_after)
        return refused
    if signed_in is None:
        context = {"next": target, "error": "Wrong user name, password or token."}
        return dash.render(request, "login.html", context, session, None, status=401)
    log.info("dashboard: %s signed in", signed_in.user)
    return dash.redirect(request, target, signed_in, None)


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session (a saved copy of its cookie no longer signs in)."""
    dash = dashboard(request)
    session = dash.sessions.load(request)
    await _form(request, session)
    dash.sessions.sign_out(session)
    return dash.redirect(request, "/login", Session(), "Signed out.")


async def _admin_action(request: Request) -> tuple[Dashboard, str, Session, Runtime]:
    """The signed-in user's POST, its CSRF token checked: (dashboard, user, session, runtime)."""
    dash = dashboard(request)
    user, session = dash.require_user(request)
    await _form(request, session)
    return dash, user, session, runtime(request)


def _configured(rt: Runtime, name: str) -> ModelConfig:
    model = rt.config.models.get(name)
    if model is None:
        raise HTTPException(404, f"no model named {name!r} in the configuration")
    return model


@router.post("/models/{name}/run")
async def run_now(request: Request, name: str) -> Response:
    """Record a manual run of the model for the current round; the dispatcher takes it."""
    dash, user, session, rt = await _admin_action(request)
    model = _configured(rt, name)
    try:
        model_id = rt.model_ids.id_of(name)
    except AutopilotError as exc:
        return dash.redirect(request, f"/models/{name}", session, str(exc))
    info = await rt.rounds.latest(model.tournament_id)
    manual = new_run(model, model_id, source="manual",
                     round_number=info.number if info else None,
                     close_time=info.close_time if info else None)
    try:
        run, _ = await asyncio.to_thread(rt.ledger.record, manual)
        await asyncio.to_thread(rt.ledger.log, run.id, "info", f"started from the dashboard by {user}")
    except AutopilotError as exc:
        return dash.redirect(request, f"/models/{name}", session, f"Not started: {exc}")
    rt.dispatcher.wake()
    note = f" ({run.error})" if run.error else ""
    return dash.redirect(request, f"/runs/{run.id}", session, f"Run recorded: {run.state.value}{note}.")


@router.post("/models/{name}/test-trigger")
async def test_trigger(request: Request, name: str) -> Response:
    """Ask Numerai to send this model's webhook as a test (the round-trip check)."""
    dash, _, session, rt = await _admin_action(request)
    _configured(rt, name)
    try:
        trigger = await rt.client.trigger_model_webhook(  # a page must not wait for long
            rt.model_ids.id_of(name), deadline=time.time() + 30
        )
    except AutopilotError as exc:
        return dash.redirect(request, f"/models/{name}", session,
                             f"Numerai refused the test trigger: {rt.monitor.alerter.redact(str(exc))}")
    return dash.redirect(request, f"/models/{name}", session,
                         f"Test trigger {trigger} sent: Numerai now calls this model's webhook.")


@router.post("/runs/{run_id}/rerun")
async def rerun(request: Request, run_id: str) -> Response:
    """Queue a failed run again; the dispatcher picks it up at once."""
    dash, user, session, rt = await _admin_action(request)
    run = await asyncio.to_thread(rt.ledger.get, run_id)
    if run is None:
        raise HTTPException(404, f"no run {run_id!r}")
    if run.state is not RunState.FAILED:
        return dash.redirect(request, f"/runs/{run_id}", session,
                             f"Only a failed run can be re-run; this one is {run.state.value}.")
    try:
        await asyncio.to_thread(rt.ledger.advance, run_id, RunState.QUEUED)
        await asyncio.to_thread(rt.ledger.log, run_id, "info", f"re-run requested by {user}")
    except AutopilotError as exc:
        return dash.redirect(request, f"/runs/{run_id}", session, f"Not re-run: {exc}")
    rt.dispatcher.wake()
    return dash.redirect(request, f"/runs/{run_id}", session, "Queued again.")


@router.post("/runs/{run_id}/approve")
async def approve_held(request: Request, run_id: str) -> Response:
    """Submit a held (suspect) run after all: its kept predictions (`choice=primary`, the
    Submit anyway button) or its model's fallback (`choice=fallback`); until the round closes."""
    dash = dashboard(request)
    user, session = dash.require_user(request)
    form = await _form(request, session)
    rt = runtime(request)
    choice = form.get("choice")
    if choice not in ("primary", "fallback"):
        raise HTTPException(400, "choice must be 'primary' or 'fallback'")
    run = await asyncio.to_thread(rt.ledger.get, run_id)
    if run is None:
        raise HTTPException(404, f"no run {run_id!r}")
    model = rt.config.models.get(run.model_name)
    if choice == "fallback" and (model is None or model.fallback is None):
        return dash.redirect(request, f"/runs/{run_id}", session,
                             f"Model {run.model_name} has no fallback; set models."
                             f"{run.model_name}.fallback to submit one.")
    try:
        await asyncio.to_thread(approve, rt.ledger, run_id, choice, user, time.time())
    except AutopilotError as exc:
        return dash.redirect(request, f"/runs/{run_id}", session, f"Not submitted: {exc}")
    rt.dispatcher.wake()
    what = "its kept predictions" if choice == "primary" else "its fallback"
    return dash.redirect(request, f"/runs/{run_id}", session, f"Approved: submitting {what}.")
