"""A server that starts with no record of the current round asks Numerai (the sandbox, over
HTTP) what it already has: a lost ledger neither resubmits nor skips a model."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_harness import RunningServer, make_config, predictor

from numerai_autopilot.ledger import Run, RunState
from numerai_autopilot.runtime import Runtime
from numerai_autopilot.sandbox.testing import RunningSandbox, serve_asgi
from numerai_autopilot.web import create_app

# two servers start in each test
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@contextmanager
def serving(directory: Path, sandbox: RunningSandbox, models: dict[str, str | dict[str, Any]],
            *, ready: bool = True, **settings: Any) -> Iterator[RunningServer]:
    """Our server in this process with its own config and ledger in `directory`."""
    directory.mkdir()
    config = make_config(directory, sandbox, models, **settings)
    runtime = Runtime(config)
    with serve_asgi(create_app(config, runtime=runtime), http="auto") as url:
        deadline = time.monotonic() + 120  # a loaded machine starts Dask slowly
        while ready and not httpx.get(f"{url}/healthz").json()["executor_ready"]:
            assert time.monotonic() < deadline, "executor did not start"
            time.sleep(0.05)
        yield RunningServer(url, config, runtime)


def hook(server: RunningServer, model: str, round_number: int) -> httpx.Response:
    return httpx.post(server.hook_url(model), json={
        "roundNumber": round_number, "dataVersion": 1, "triggerId": str(uuid.uuid4())})


def submissions_of(sandbox: RunningSandbox, round_number: int) -> dict[str, list[str]]:
    """Model name -> ids of its submissions for the round."""
    found: dict[str, list[str]] = {}
    for sub in sandbox.submissions():
        if sub["round_number"] == round_number:
            found.setdefault(sub["model_name"], []).append(sub["id"])
    return found


def submit_with_a_first_server(tmp_path: Path, sandbox: RunningSandbox, model: str,
                               round_number: int) -> str:
    """`model` submitted for the round by a server whose ledger is then lost; the id."""
    with serving(tmp_path / "first", sandbox, {model: predictor("good")}) as first:
        assert hook(first, model, round_number).status_code == 200
        (run,) = first.wait_final(1)
        assert run.state is RunState.SUBMITTED, run.error
    assert run.submission_id is not None
    return run.submission_id


def recovered(run: Run) -> bool:
    return bool(run.detail.get("recovered_from_numerai"))


def test_a_fresh_ledger_records_what_numerai_has_and_the_watcher_submits_the_rest(
    tmp_path: Path, sandbox: RunningSandbox
) -> None:
    number = sandbox.open_round()["number"]
    alpha_submission = submit_with_a_first_server(tmp_path, sandbox, "alpha", number)

    with serving(tmp_path / "second", sandbox,
                 {"alpha": predictor("good"), "beta": predictor("good")},
                 server_watch_after="1s", server_watch_interval="0.3s") as second:
        runs = {r.model_name: r for r in second.wait_final(2)}
        alpha, beta = runs["alpha"], runs["beta"]
        # alpha: recorded as submitted from Numerai's list, never run again
        assert alpha.state is RunState.SUBMITTED and recovered(alpha), alpha
        assert alpha.submission_id == alpha_submission and alpha.round_number == number
        assert alpha.attempts == 0
        assert any("already has submission" in line.message
                   for line in second.runtime.ledger.logs(alpha.id))
        # beta: Numerai had nothing; the watcher started its run, as without a lost ledger
        assert beta.state is RunState.SUBMITTED and beta.source == "watcher", beta.error
        assert not recovered(beta)
        # a later trigger of alpha's round: resubmit = false holds against the recovered run
        again = hook(second, "alpha", number)
        assert again.json()["state"] == "skipped", again.json()
    assert submissions_of(sandbox, number) == {
        "alpha": [alpha_submission], "beta": [beta.submission_id]}


def test_a_webhook_recorded_while_the_server_starts_does_not_submit_the_round_again(
    tmp_path: Path, sandbox: RunningSandbox
) -> None:
    number = sandbox.open_round()["number"]
    alpha_submission = submit_with_a_first_server(tmp_path, sandbox, "alpha", number)
    # Numerai is slow to list submissions: the webhook that starts the new instance (say, a
    # second trigger of the round) is recorded before the recovery knows.
    sandbox.set_faults(operations={"submissions": {"latency_ms": 3000}})
    with serving(tmp_path / "second", sandbox, {"alpha": predictor("good")},
                 ready=False) as second:
        answer = hook(second, "alpha", number)
        assert answer.status_code == 200 and answer.json()["state"] == "queued"
        runs = {r.id: r for r in second.wait_final(2)}
    webhook_run = runs.pop(answer.json()["run_id"])
    (recovered_run,) = runs.values()
    assert recovered(recovered_run) and recovered_run.submission_id == alpha_submission
    assert webhook_run.state is RunState.SKIPPED, webhook_run
    assert webhook_run.error is not None and "already submitted" in webhook_run.error
    assert submissions_of(sandbox, number) == {"alpha": [alpha_submission]}
