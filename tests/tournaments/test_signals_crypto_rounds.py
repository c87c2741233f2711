"""Signals and Crypto end to end: sandbox webhook -> our server -> validation -> upload.

Over real HTTP: the sandbox fires the round-open webhook, the server records the run,
downloads the tournament's universe once, predicts in a Dask worker, validates with
numerai-tools' rules and uploads through the tournament's own operations with the trigger id.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from server_harness import RunningServer, StartServer

from numerai_autopilot.ledger import Run, RunState
from numerai_autopilot.sandbox.testing import RunningSandbox

PREDICTORS = Path(__file__).with_name("ticker_predictors.py")
LIVE_FILES = {8: "v5.3/live.parquet", 11: "signals/v2.1/live.parquet",
              12: "crypto/v2.0/live_universe.parquet"}
NAMES = {8: "classic", 11: "signals", 12: "crypto"}
MODELS = {8: "alpha", 11: "sig", 12: "cry"}
KEYS = {11: "numerai_ticker", 12: "symbol"}


def model(tournament: int, function: str) -> dict[str, Any]:
    return {"predictor": f"{PREDICTORS}:{function}", "tournament": NAMES[tournament]}


def register(sandbox: RunningSandbox, server: RunningServer, names: list[str]) -> None:
    for name in names:
        sandbox.set_webhook(name, server.hook_url(name))


def live_downloads(sandbox: RunningSandbox, tournament: int, number: int) -> list[Any]:
    return [d for d in sandbox.downloads()
            if d["filename"] == LIVE_FILES[tournament] and d["round_number"] == number]


def universe(sandbox: RunningSandbox, tournament: int, number: int) -> frozenset[str]:
    return sandbox.sandbox.data.round_keys(tournament, number)


def upload_rows(sandbox: RunningSandbox, submission: dict[str, Any]) -> list[str]:
    """The uploaded file's lines, as the sandbox stored them."""
    path = sandbox.settings.data_dir / "uploads" / str(submission["filename"])
    return path.read_text().splitlines()


@pytest.mark.parametrize(("tournament", "function"), [
    (11, "signals_good"), (11, "signals_series"), (12, "crypto_good"),
])
def test_a_round_is_predicted_validated_and_submitted(
    sandbox: RunningSandbox, start_server: StartServer, tournament: int, function: str
) -> None:
    name = MODELS[tournament]
    server = start_server({name: model(tournament, function)})
    register(sandbox, server, [name])
    opened = sandbox.open_round(tournament)
    (run,) = server.wait_final(1)
    assert run.state is RunState.SUBMITTED, run.error
    assert (run.tournament, run.round_number) == (tournament, opened["number"])
    (sub,) = sandbox.submissions()
    assert sub["model_name"] == name and sub["tournament"] == tournament
    assert sub["round_number"] == opened["number"]
    assert sub["trigger_id"] == run.trigger_id and sub["id"] == run.submission_id
    tickers = universe(sandbox, tournament, opened["number"])
    assert sub["row_count"] == len(tickers) == run.detail["rows"]
    header, *rows = upload_rows(sandbox, sub)
    assert header == f"{KEYS[tournament]},signal"
    assert {row.rsplit(",", 1)[0] for row in rows} == tickers
    assert all(0 < float(row.rsplit(",", 1)[1]) < 1 for row in rows)
    assert len(live_downloads(sandbox, tournament, opened["number"])) == 1


TOO_FEW = {
    "sig": r"^model 'sig': 40 tickers submitted; Numerai needs at least 100 of this round's "
           r"universe \(300 tickers\); return a signal for more of the universe",
    "cry": r"^model 'cry': 99 symbols submitted; Numerai needs at least 100 of this round's "
           r"universe \(150 symbols\)",
}
UNKNOWN = {
    "sig": r"^model 'sig': 40 tickers are not in this round's universe \(e\.g\. 'NOPE0 US', "
           r"'NOPE1 US', 'NOPE2 US'\); predict only on the numerai_ticker values of this "
           r"round's live universe \(signals/v2\.1/live\.parquet\)",
    "cry": r"^model 'cry': 3 symbols are not in this round's universe \(e\.g\. 'NOPE1', "
           r"'NOPE2', 'NOPE3'\)",
}


@pytest.mark.parametrize(("sig", "cry"), [
    ("signals_too_few", "crypto_unknown"), ("signals_unknown", "crypto_too_few"),
])
def test_an_invalid_submission_fails_with_a_clear_error_and_uploads_nothing(
    sandbox: RunningSandbox, start_server: StartServer, sig: str, cry: str
) -> None:
    server = start_server({"sig": model(11, sig), "cry": model(12, cry)})
    register(sandbox, server, ["sig", "cry"])
    sandbox.open_round(11)
    sandbox.open_round(12)
    runs = server.wait_final(2)
    expected = {"sig": (TOO_FEW if sig.endswith("too_few") else UNKNOWN)["sig"],
                "cry": (TOO_FEW if cry.endswith("too_few") else UNKNOWN)["cry"]}
    for run in runs:
        assert run.state is RunState.FAILED and run.submission_id is None
        assert run.error is not None and re.match(expected[run.model_name], run.error), run.error
    assert sorted(r.model_name for r in runs) == ["cry", "sig"]
    assert sandbox.uploads() == [] and sandbox.submissions() == []


def test_classic_signals_and_crypto_in_one_service_in_one_round(
    sandbox: RunningSandbox, start_server: StartServer
) -> None:
    # Crypto one round ahead: each tournament keeps its own round number
    sandbox.open_round(12)
    server = start_server({
        "alpha": model(8, "classic_good"), "sig": model(11, "signals_good"),
        "cry": model(12, "crypto_good"),
    })
    names = list(MODELS.values())
    register(sandbox, server, names)
    opened = {t: sandbox.open_round(t)["number"] for t in MODELS}
    assert opened[12] == opened[8] + 1 == opened[11] + 1
    runs = server.wait_final(3)
    by_model: dict[str, Run] = {r.model_name: r for r in runs}
    assert sorted(by_model) == sorted(names) and len(runs) == 3
    for tournament, name in MODELS.items():
        run = by_model[name]
        assert run.state is RunState.SUBMITTED, (name, run.error)
        assert (run.tournament, run.round_number) == (tournament, opened[tournament])
        figures = run.detail["health"]["figures"]  # Signals, Crypto: coverage, no exposure
        assert ("coverage" in figures) == (tournament != 8) != ("exposure" in figures)
    subs = sandbox.submissions()
    assert sorted((s["model_name"], s["tournament"], s["round_number"]) for s in subs) == sorted(
        (name, t, opened[t]) for t, name in MODELS.items()
    )
    assert {s["trigger_id"] for s in subs} == {r.trigger_id for r in runs}
    for tournament in MODELS:
        assert len(live_downloads(sandbox, tournament, opened[tournament])) == 1, tournament
    # + Classic's benchmark models and example predictions
    assert server.runtime.services.rounddata.downloads == 5
