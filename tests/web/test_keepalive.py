"""`POST /internal/keepalive`: only with the keep-busy token; held while a run is unfinished,
answered once none is left or after `wait` seconds."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from server_harness import SECRET, RunningServer, StartServer, predictor

from numerai_autopilot.ledger import RunState
from numerai_autopilot.runs.keepbusy import PATH, TOKEN_HEADER, keep_busy_token
from numerai_autopilot.sandbox.testing import RunningSandbox

TOKEN = keep_busy_token(SECRET)


@pytest.fixture
def server(start_server: StartServer) -> RunningServer:
    return start_server({"alpha": predictor("slow")})


def _keepalive(server: RunningServer, headers: dict[str, str], **params: Any) -> httpx.Response:
    return httpx.post(server.url + PATH, headers=headers, params=params, timeout=60)


def test_only_the_token_is_let_in_and_with_no_run_left_it_answers_at_once(
    server: RunningServer,
) -> None:
    for headers in ({}, {TOKEN_HEADER: "0" * 64}, {TOKEN_HEADER: TOKEN[:-1]},
                    {"Authorization": f"Bearer {TOKEN}"}):
        answer = _keepalive(server, headers)
        assert answer.status_code == 401, headers
        assert TOKEN_HEADER in answer.json()["detail"]
        assert TOKEN not in answer.text and SECRET not in answer.text
    answer = _keepalive(server, {TOKEN_HEADER: TOKEN})
    assert answer.status_code == 200 and answer.json() == {"unfinished": 0}
    assert server.runtime.keep_busy.holding == 0


def test_it_is_held_until_the_run_is_final_or_for_wait_seconds(
    server: RunningServer, sandbox: RunningSandbox
) -> None:
    round_number = sandbox.state()["current_rounds"]["8"]["number"]
    hook = httpx.post(server.hook_url("alpha"), json={
        "roundNumber": round_number, "dataVersion": 1, "triggerId": str(uuid.uuid4())})
    run_id = hook.json()["run_id"]

    short = _keepalive(server, {TOKEN_HEADER: TOKEN}, wait=0.2)  # the slow model predicts for 4 s
    assert short.json() == {"unfinished": 1}
    run = server.runtime.ledger.get(run_id)
    assert run is not None and not run.is_final

    held = _keepalive(server, {TOKEN_HEADER: TOKEN})
    assert held.json() == {"unfinished": 0}
    run = server.runtime.ledger.get(run_id)
    assert run is not None and run.state is RunState.SUBMITTED, run
    assert server.runtime.keep_busy.holding == 0
