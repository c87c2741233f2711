"""Blend models end to end: the sandbox fires every model's webhook, our server predicts the
members in Dask workers and submits the blend from their kept predictions, over real HTTP.

The blend's upload is checked against the same blend computed independently (scipy ranks,
numpy weights) from the files the members themselves submitted to the sandbox.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from blend_support import blend_sandbox, expected_blend, member, uploaded
from server_harness import ADMIN_TOKEN, AUTH, RunningServer, StartServer

from numerai_autopilot.ledger import Run, RunState
from numerai_autopilot.runs.blend import BlendError, blend_csv
from numerai_autopilot.sandbox.settings import SandboxSettings
from numerai_autopilot.sandbox.testing import RunningSandbox

MEMBERS = ("alpha", "beta", "gamma")
LIVE_FILE = "v5.3/live.parquet"


@pytest.fixture
def sandbox(sandbox_settings: SandboxSettings) -> Iterator[RunningSandbox]:
    """The test account, with the blend models `ens` and `ens2` (what `start_server` uses)."""
    with blend_sandbox(sandbox_settings) as running:
        yield running


@pytest.fixture
def calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The file each member predictor notes its calls in (read by blend_predictors.py)."""
    path = tmp_path / "predictor-calls.txt"
    monkeypatch.setenv("BLEND_TEST_CALLS", str(path))
    return path


def play_round(sandbox: RunningSandbox, start_server: StartServer,
               models: dict[str, str | dict[str, Any]]) -> tuple[RunningServer, int, dict[str, Run]]:
    """Start the server with `models` (member predictors by function name, blends by their
    settings), register every model's webhook, open a round and wait for every run to end."""
    server = start_server({name: member(spec) if isinstance(spec, str) else spec
                           for name, spec in models.items()})
    for name in models:
        sandbox.set_webhook(name, server.hook_url(name))
    number = int(sandbox.open_round()["number"])
    runs = server.wait_final(len(models), timeout=110)
    return server, number, {run.model_name: run for run in runs}


def assert_blend_of(got: pd.Series, members: dict[str, pd.Series],
                    weights: dict[str, float]) -> None:
    want = expected_blend(members, weights)
    assert sorted(got.index) == list(want.index)  # every live id, once
    np.testing.assert_allclose(got.reindex(want.index).to_numpy(), want.to_numpy(), rtol=1e-9)


def submitted(sandbox: RunningSandbox) -> dict[str, pd.Series]:
    return {str(sub["model_name"]): uploaded(sandbox, sub) for sub in sandbox.submissions()}


def logs(server: RunningServer, run: Run) -> str:
    return "\n".join(line.message for line in server.runtime.ledger.logs(run.id))


def blend(weights: dict[str, float], **settings: Any) -> dict[str, Any]:
    return {"blend": weights, **settings}


def test_a_blend_submits_the_weighted_rank_average_and_waits_for_a_slow_member(
    sandbox: RunningSandbox, start_server: StartServer, calls: Path
) -> None:
    weights = {"alpha": 0.5, "beta": 0.3, "gamma": 0.2}
    server, number, runs = play_round(sandbox, start_server, {
        "alpha": "first_half", "beta": "slow_second_half", "gamma": "first_feature",
        "ens": blend(weights)})
    assert all(run.state is RunState.SUBMITTED for run in runs.values()), {
        name: run.error for name, run in runs.items()}
    files = submitted(sandbox)
    assert_blend_of(files["ens"], {name: files[name] for name in MEMBERS}, weights)
    ens = runs["ens"]
    assert ens.round_number == number and ens.detail["blend"] == {
        name: {"weight": weight, "run": runs[name].id} for name, weight in weights.items()}
    assert ens.detail["blend_missing"] == {}
    assert "waiting for beta" in logs(server, ens)
    # the blend ran no predictor: one call per member; and no download of its own
    assert sorted(calls.read_text().split()) == ["first_feature", "first_half", "second_half"]
    assert len([d for d in sandbox.downloads() if d["filename"] == LIVE_FILE
                and d["round_number"] == number]) == 1
    # a model without a predictor on the pages and in the API
    with httpx.Client(base_url=server.url) as browser:  # signed in with the admin token
        token = re.findall(r'name="csrf" value="([^"]+)"', browser.get("/login").text)[0]
        browser.post("/login", data={"csrf": token, "username": "", "password": ADMIN_TOKEN})
        page = browser.get("/models/ens")
    assert page.status_code == 200 and "blend" in page.text and "alpha" in page.text
    listed = {m["name"]: m for m in httpx.get(f"{server.url}/api/models", headers=AUTH).json()}
    assert listed["ens"]["settings"]["blend"] == weights
    assert listed["ens"]["last_submission"]["run_id"] == ens.id


def test_a_blend_renormalizes_over_the_members_present(
    sandbox: RunningSandbox, start_server: StartServer, calls: Path
) -> None:
    server, _, runs = play_round(sandbox, start_server, {
        "alpha": "first_half", "beta": "second_half", "gamma": "broken",
        "ens": blend({"alpha": 0.5, "beta": 0.3, "gamma": 0.2})})
    assert runs["gamma"].state is RunState.FAILED
    ens = runs["ens"]
    assert ens.state is RunState.SUBMITTED, ens.error
    files = submitted(sandbox)
    assert_blend_of(files["ens"], {"alpha": files["alpha"], "beta": files["beta"]},
                    {"alpha": 0.5, "beta": 0.3})
    assert set(ens.detail["blend"]) == {"alpha", "beta"}
    assert f"its run {runs['gamma'].id} failed" in ens.detail["blend_missing"]["gamma"]
    said = logs(server, ens)
    assert "weights renormalized over 0.8 of 1" in said and "missing gamma (0.2)" in said
    assert sorted(calls.read_text().split()) == ["broken", "first_half", "second_half"]


@pytest.mark.parametrize(("weights", "settings", "expected"), [
    ({"alpha": 0.2, "beta": 0.2, "gamma": 0.6}, {},
     (r"blend 'ens': only 0\.4 of its weight 1 has predictions for round \d+ \(alpha \(0\.2\), "
      r"beta \(0\.2\)\); at least half is needed\. Missing: gamma \(0\.6\): its run \S+ failed")),
    ({"alpha": 0.5, "beta": 0.3, "gamma": 0.2}, {"blend_missing": "fail"},
     (r"blend 'ens': members missing for round \d+: gamma \(0\.2\): its run \S+ failed: "
      r".*member model file is corrupt.*\(blend_missing = \"fail\"")),
])
def test_a_blend_fails_naming_the_missing_members(
    sandbox: RunningSandbox, start_server: StartServer, weights: dict[str, float],
    settings: dict[str, Any], expected: str,
) -> None:
    _, _, runs = play_round(sandbox, start_server, {
        "alpha": "first_half", "beta": "second_half", "gamma": "broken",
        "ens": blend(weights, **settings)})
    error = runs["ens"].error
    assert runs["ens"].state is RunState.FAILED and error is not None
    assert re.search(expected, error), error
    assert sorted(submitted(sandbox)) == ["alpha", "beta"]


def test_a_blend_of_blends_uses_the_inner_blends_kept_predictions(
    sandbox: RunningSandbox, start_server: StartServer, calls: Path
) -> None:
    _, _, runs = play_round(sandbox, start_server, {
        "alpha": "first_half", "beta": "second_half", "gamma": "first_feature",
        "ens": blend({"alpha": 1.0, "beta": 1.0}), "ens2": blend({"ens": 0.5, "gamma": 0.5})})
    assert all(run.state is RunState.SUBMITTED for run in runs.values()), {
        name: run.error for name, run in runs.items()}
    files = submitted(sandbox)
    assert_blend_of(files["ens2"], {"ens": files["ens"], "gamma": files["gamma"]},
                    {"ens": 0.5, "gamma": 0.5})
    assert len(calls.read_text().split()) == 3


def test_a_signals_blend_averages_over_the_members_that_rank_each_ticker(tmp_path: Path) -> None:
    tickers = [f"T{i:03d} US" for i in range(150)]
    live = tmp_path / "live.arrow"
    with pa.OSFile(str(live), "wb") as sink, pa.ipc.new_file(
            sink, pa.schema([("numerai_ticker", pa.string())])) as writer:
        writer.write_table(pa.table({"numerai_ticker": tickers}))
    rng = np.random.default_rng(7)
    first, second = tickers[:120], tickers[30:]  # 90 tickers in both, 30 in one each
    members = {name: pd.Series(rng.uniform(0.05, 0.95, len(keys)), index=keys)
               for name, keys in (("a", first), ("b", second))}
    csvs = {name: pd.DataFrame({"numerai_ticker": s.index, "signal": s.to_numpy()})
            .to_csv(index=False).encode() for name, s in members.items()}
    data, rows = blend_csv(csvs, {"a": 3.0, "b": 1.0}, live, "sigens", 11)
    got = pd.read_csv(io.BytesIO(data)).set_index("numerai_ticker")["signal"]
    ranks = {name: (s.rank() - 0.5) / len(s) for name, s in members.items()}
    both = (3 * ranks["a"].reindex(tickers).fillna(0) + ranks["b"].reindex(tickers).fillna(0)) \
        / (3 * ranks["a"].reindex(tickers).notna() + ranks["b"].reindex(tickers).notna())
    assert rows == 150 and got.between(0, 1, inclusive="neither").all()
    np.testing.assert_allclose(got.reindex(tickers).to_numpy(), both.to_numpy(), rtol=1e-9)
    other = {**csvs, "b": csvs["b"].replace(b"numerai_ticker", b"bloomberg_ticker", 1)}
    with pytest.raises(BlendError, match=r"blend 'sigens': its members' predictions have "
                                         r"different columns \(a: numerai_ticker,signal, b: "
                                         r"bloomberg_ticker,signal\)"):
        blend_csv(other, {"a": 3.0, "b": 1.0}, live, "sigens", 11)
