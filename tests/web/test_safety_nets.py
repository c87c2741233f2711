"""Safety nets: the round watcher, fallbacks, and the round's close as a deadline."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
from server_harness import StartServer, predictor

from numerai_autopilot.ledger import RunState
from numerai_autopilot.sandbox.testing import RunningSandbox


def hook(server: Any, model: str, round_number: int) -> httpx.Response:
    return httpx.post(server.hook_url(model), json={
        "roundNumber": round_number, "dataVersion": 1, "triggerId": str(uuid.uuid4())})


def test_watcher_starts_a_run_for_a_missed_webhook_and_never_duplicates(
    sandbox: RunningSandbox, start_server: StartServer
) -> None:
    # The sandbox is shared: a round left open by an earlier test would be caught by the
    # watcher too, and its late submissions counted in the round opened below.
    sandbox.close_round()
    server = start_server(
        {"alpha": predictor("good"), "beta": predictor("good"),
         "gamma": {"predictor": predictor("good"), "watch": False}},
        server_watch_after="2s", server_watch_interval="0.3s",
    )
    sandbox.set_webhook("alpha", server.hook_url("alpha"))  # beta, gamma: never a webhook
    opened = sandbox.open_round()
    runs = server.wait_final(2)
    time.sleep(1.0)  # several more watcher polls: nothing new may appear
    runs = [r for r in server.runs() if r.round_number == opened["number"]]
    by_model = {r.model_name: r for r in runs}
    assert sorted(by_model) == ["alpha", "beta"] and len(runs) == 2
    assert by_model["alpha"].source == "webhook" and by_model["beta"].source == "watcher"
    assert all(r.state is RunState.SUBMITTED for r in runs), [r.error for r in runs]
    subs = [s for s in sandbox.submissions() if s["round_number"] == opened["number"]]
    assert sorted(s["model_name"] for s in subs) == ["alpha", "beta"]
    (beta_sub,) = [s for s in subs if s["model_name"] == "beta"]
    assert beta_sub["trigger_id"] is None  # a watcher run has no Numerai trigger to send back


def test_fallbacks_submit_when_the_primary_fails_and_say_so(
    sandbox: RunningSandbox, start_server: StartServer
) -> None:
    bench = next(name for name in sandbox.state()["datasets"]["8"] if "benchmark" in name)
    assert bench  # the sandbox publishes live benchmark models
    server = start_server({
        "alpha": {"predictor": predictor("raises"), "fallback": "benchmark:v53_lgbm_cyrusd20"},
        "beta": {"predictor": predictor("hangs"), "fallback": predictor("good"), "timeout": 3},
        "gamma": {"predictor": predictor("nan"), "fallback": "benchmark:no_such_column"},
    })
    round_number = sandbox.state()["current_rounds"]["8"]["number"]
    for model in ("alpha", "beta", "gamma"):
        assert hook(server, model, round_number).status_code == 200
    runs = {r.model_name: r for r in server.wait_final(3)}
    alpha, beta, gamma = runs["alpha"], runs["beta"], runs["gamma"]
    assert alpha.state is RunState.SUBMITTED, alpha.error
    assert alpha.detail["fallback"] == "benchmark:v53_lgbm_cyrusd20"
    assert "model file is corrupt" in alpha.detail["primary_error"]
    assert beta.state is RunState.SUBMITTED, beta.error
    assert "timed out after 3 s" in beta.detail["primary_error"]
    assert gamma.state is RunState.FAILED
    assert "'no_such_column' is not in live_benchmark_models" in (gamma.error or "")
    logs = [line.message for line in server.runtime.ledger.logs(alpha.id)]
    assert any("using fallback" in message for message in logs)


def test_a_closed_round_fails_fast_unless_the_model_submits_late(
    sandbox: RunningSandbox, start_server: StartServer
) -> None:
    server = start_server({
        "alpha": predictor("good"),
        "beta": {"predictor": predictor("good"), "late_submissions": True},
    }, server_watch_after="1h")
    opened = sandbox.open_round(length_s=1)
    time.sleep(1.5)
    for model in ("alpha", "beta"):
        assert hook(server, model, opened["number"]).status_code == 200
    runs = {r.model_name: r for r in server.wait_final(2)}
    assert runs["alpha"].state is RunState.FAILED
    assert "closed at" in (runs["alpha"].error or "") and "late_submissions = true" in (runs["alpha"].error or "")
    assert runs["beta"].state is RunState.SUBMITTED, runs["beta"].error


def test_a_run_of_a_replaced_round_fails_instead_of_submitting_into_the_new_one(
    sandbox: RunningSandbox, start_server: StartServer
) -> None:
    """Numerai's create_submission names no round: once a newer round is open, a run of the
    old one (a server back after a day down, a late webhook) would submit into the new round,
    late submissions included. It fails, saying why, and sends nothing."""
    server = start_server({
        "alpha": predictor("good"),
        "beta": {"predictor": predictor("good"), "late_submissions": True},
    }, server_watch_after="1h")
    old = sandbox.open_round()["number"]
    new = sandbox.open_round()["number"]
    for model in ("alpha", "beta"):
        assert hook(server, model, old).status_code == 200
    runs = server.wait_final(2)
    for run in runs:
        assert run.state is RunState.FAILED and run.round_number == old
        assert f"round {old} is over: Numerai's current round is {new}" in (run.error or "")
    for name in ("alpha", "beta"):
        sent = httpx.get(f"{sandbox.url}/_sandbox/submissions",
                         params={"model_id": server.model_id(name)}).json()
        assert sent == [], sent


def test_a_round_opened_since_the_last_lookup_is_looked_up_for_its_close(
    sandbox: RunningSandbox, start_server: StartServer
) -> None:
    server = start_server({"alpha": predictor("good")}, server_watch_after="1h")
    first = sandbox.open_round()
    assert hook(server, "alpha", first["number"]).status_code == 200
    server.wait_final(1)  # the pipeline remembers round `first` for 30 s
    second = sandbox.open_round(length_s=1)
    time.sleep(1.5)
    assert hook(server, "alpha", second["number"]).status_code == 200
    runs = {r.round_number: r for r in server.wait_final(2)}
    late = runs[second["number"]]
    assert late.state is RunState.FAILED  # not submitted late with no deadline
    assert f"round {second['number']} closed at" in (late.error or ""), late.error


def test_retries_stop_at_the_round_close(sandbox: RunningSandbox, start_server: StartServer) -> None:
    server = start_server({"alpha": predictor("good")}, server_watch_after="1h")
    opened = sandbox.open_round(length_s=8)
    sandbox.set_faults(operations={"create_submission": {"error_rate": 1.0}})
    assert hook(server, "alpha", opened["number"]).status_code == 200
    (run,) = server.wait_final(1, timeout=60)
    assert run.state is RunState.FAILED
    assert "gave up at the round's close" in (run.error or "")
    assert sandbox.submissions() == []
