"""Whole rounds through the real server: many models, one download, failures kept apart."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from server_harness import StartServer, predictor, submitted

from numerai_autopilot.ledger import RunState
from numerai_autopilot.sandbox.settings import ModelSpec, SandboxSettings
from numerai_autopilot.sandbox.testing import RunningSandbox, running_sandbox

BAD = ("raises", "hangs", "exits", "nan", "missing_ids", "out_of_range")


def register(sandbox: RunningSandbox, server: Any, models: list[str]) -> None:
    for name in models:
        sandbox.set_webhook(name, server.hook_url(name))


def live_downloads(sandbox: RunningSandbox, round_number: int) -> list[dict[str, Any]]:
    return [d for d in sandbox.downloads()
            if d["filename"].endswith("/live.parquet") and d["round_number"] == round_number]


def test_three_models_at_once_give_three_submissions_and_one_download(
    sandbox: RunningSandbox, start_server: StartServer
) -> None:
    names = ["alpha", "beta", "gamma"]
    server = start_server({n: predictor("good") for n in names})
    register(sandbox, server, names)
    opened = sandbox.open_round()
    runs = server.wait_final(3)
    assert len(submitted(runs)) == 3, [(r.model_name, r.error) for r in runs]
    subs = [s for s in sandbox.submissions() if s["round_number"] == opened["number"]]
    assert sorted(s["model_name"] for s in subs) == names
    assert {s["trigger_id"] for s in subs} == {r.trigger_id for r in runs}
    assert len(live_downloads(sandbox, opened["number"])) == 1


def test_the_upload_url_is_asked_for_while_the_model_predicts(
    sandbox: RunningSandbox, start_server: StartServer
) -> None:
    server = start_server({"alpha": predictor("takes_a_moment")})
    register(sandbox, server, ["alpha"])
    opened = sandbox.open_round()
    [run] = server.wait_final(1)
    assert run.state is RunState.SUBMITTED, run.error
    slots = [s for s in sandbox.sandbox.slots.values() if s.round_number == opened["number"]]
    assert len(slots) == 1  # asked for once, early, and used by the upload
    predicting = next(s for s in server.runtime.ledger.stages(run.id)
                      if s.state is RunState.PREDICTING)
    assert predicting.ended_at is not None and slots[0].issued_at < predicting.ended_at


def test_the_round_data_downloads_while_numerai_is_asked_for_the_round(
    sandbox: RunningSandbox, start_server: StartServer
) -> None:
    server = start_server({"alpha": predictor("good")}, server_watch_after="1h")
    register(sandbox, server, ["alpha"])
    sandbox.set_faults(operations={"rounds": {"error_rate": 1.0, "error_status": 503,
                                              "times": 3}})
    opened = sandbox.open_round()
    [run] = server.wait_final(1)
    assert run.state is RunState.SUBMITTED, run.error
    errors = [f for f in sandbox.sandbox.faults.view()["injected"] if f["operation"] == "rounds"]
    assert len(errors) == 3  # the round lookup (for its close) was retried ...
    [live] = live_downloads(sandbox, opened["number"])
    # ... and the live data was already downloading before its last failure
    assert datetime.fromisoformat(live["started_at"]) < datetime.fromisoformat(errors[-1]["at"])


def test_a_test_trigger_just_after_a_round_opens_predicts_on_the_new_round(
    sandbox: RunningSandbox, start_server: StartServer
) -> None:
    """A trigger that names no round is for the round open now, though this process
    looked the previous one up a moment ago (a second instance that saw no webhook of it)."""
    server = start_server({"alpha": predictor("good")}, server_watch_after="1h")

    def trigger(name: str) -> None:
        answer = httpx.post(server.hook_url("alpha"), timeout=30,
                            json={"roundNumber": "test", "triggerId": name})
        assert answer.status_code == 200, answer.text

    trigger("before")
    server.wait_final(1)
    opened = sandbox.open_round()  # no webhook registered: this instance is not told
    trigger("after")
    runs = server.wait_final(2)
    assert [r.state for r in runs] == [RunState.SUBMITTED] * 2, [r.error for r in runs]
    rounds = {s["trigger_id"]: s["round_number"] for s in sandbox.submissions()}
    assert rounds == {"before": opened["number"] - 1, "after": opened["number"]}


@pytest.fixture
def many_sandbox(sandbox_settings: SandboxSettings) -> Iterator[RunningSandbox]:
    models = tuple(ModelSpec(name) for name in ("good", *BAD))
    with running_sandbox(dataclasses.replace(sandbox_settings, models=models)) as sandbox:
        yield sandbox


def test_each_failing_predictor_fails_alone_with_a_clear_message(
    many_sandbox: RunningSandbox, start_server: StartServer
) -> None:
    names = ["good", *BAD]
    models: dict[str, str | dict[str, object]] = {n: predictor(n) for n in names}
    models["hangs"] = {"predictor": predictor("hangs"), "timeout": 4}
    server = start_server(models, against=many_sandbox, timeout=120)
    register(many_sandbox, server, names)
    opened = many_sandbox.open_round()
    runs = {r.model_name: r for r in server.wait_final(len(names), timeout=120)}
    assert runs["good"].state is RunState.SUBMITTED, runs["good"].error
    errors = {name: runs[name].error or "" for name in BAD}
    assert all(runs[name].state is RunState.FAILED for name in BAD), errors
    assert "ValueError: model file is corrupt" in errors["raises"]
    assert "timed out after 4 s" in errors["hangs"]
    assert "worker died" in errors["exits"] and runs["exits"].attempts == 2  # retried once
    assert "17" in errors["nan"] and "NaN" in errors["nan"]
    assert "12 fewer rows" in errors["missing_ids"]
    assert "outside [0, 1]" in errors["out_of_range"] and "3 " in errors["out_of_range"]
    for name in BAD:
        assert f"model '{name}'" in errors[name]
    uploads = [s["model_name"] for s in many_sandbox.submissions()
               if s["round_number"] == opened["number"]]
    assert uploads == ["good"]  # nothing invalid was uploaded
