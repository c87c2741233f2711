"""The real numerapi (3.1.x), pointed at the sandbox, does what users do with it."""

from __future__ import annotations

import logging
from pathlib import Path

import numerapi
import numerapi.base_api
import pandas as pd
import pytest
import requests

from numerai_autopilot.sandbox.testing import RunningSandbox


@pytest.fixture
def napi(sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch) -> numerapi.NumerAPI:
    monkeypatch.setattr(numerapi.base_api, "API_TOURNAMENT_URL", sandbox.url)
    monkeypatch.delenv("NUMERAI_PUBLIC_ID", raising=False)
    monkeypatch.delenv("NUMERAI_SECRET_KEY", raising=False)
    api = numerapi.NumerAPI(  # type: ignore[no-untyped-call]
        sandbox.public_id, sandbox.secret_key, show_progress_bars=False)
    api.logger.setLevel(logging.WARNING)
    return api


def test_a_round_with_numerapi(sandbox: RunningSandbox, napi: numerapi.NumerAPI,
                               tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert napi.get_current_round() == sandbox.settings.start_round
    assert napi.check_round_open()
    assert napi.check_new_round()
    files = napi.list_datasets()
    assert "v5.3/live.parquet" in files and "v5.3/features.json" in files

    path = napi.download_dataset("v5.3/live.parquet", str(tmp_path / "live.parquet"))
    live = pd.read_parquet(path)
    assert live.index.name == "id" and len(live) == sandbox.settings.sizes.live_rows

    models = napi.get_models()
    assert models == {"alpha": sandbox.models["alpha"], "beta": sandbox.models["beta"],
                      "gamma": sandbox.models["gamma"]}
    account = napi.get_account()
    assert {m["name"] for m in account["models"]} >= {"alpha", "sig", "cry"}

    webhook = "http://127.0.0.1:9/pred/alpha?token=s3cr3t"
    assert napi.set_submission_webhook(models["alpha"], webhook) is True

    monkeypatch.setenv("TRIGGER_ID", "trigger-from-env")
    predictions = pd.DataFrame({"id": live.index,
                                "prediction": live.index.map(hash).to_numpy() % 1000 / 1000})
    predictions["prediction"] = predictions["prediction"].clip(0.001, 0.999)
    submission_id = napi.upload_predictions(df=predictions, model_id=models["alpha"])

    listed = napi.submission_ids(models["alpha"])
    assert [s["id"] for s in listed] == [submission_id]
    filenames = napi.get_submission_filenames(model_id=models["alpha"])
    assert filenames[0]["round_num"] == sandbox.settings.start_round

    recorded = sandbox.submissions()
    assert len(recorded) == 1
    sub = recorded[0]
    assert sub["id"] == submission_id
    assert sub["trigger_id"] == "trigger-from-env"
    assert sub["model_name"] == "alpha" and sub["tournament"] == 8
    assert sub["row_count"] == len(live)
    assert sub["round_number"] == sandbox.settings.start_round
    assert sub["source"] == "numerapi"
    uploads = sandbox.uploads()
    assert [u["status_code"] for u in uploads] == [200]
    assert uploads[0]["sha256"] == sub["sha256"]
    downloads = sandbox.downloads()
    assert downloads[0]["filename"] == "v5.3/live.parquet" and downloads[0]["completed"]
    assert sandbox.sandbox.models[models["alpha"]].webhook == webhook
    state_webhook = next(m["webhook"] for m in sandbox.state()["account"]["models"]
                         if m["name"] == "alpha")
    assert state_webhook == "http://127.0.0.1:9/pred/alpha?token=***"


def test_numerapi_read_queries_parse(napi: numerapi.NumerAPI) -> None:
    """Every other query numerapi sends for rounds and models validates against the schema."""
    rounds = napi.list_rounds()
    assert rounds[0]["roundScoreConfigs"] == []
    assert napi.get_competitions()[0]["number"] > 0  # type: ignore[no-untyped-call]
    assert napi.set_submission_webhook(napi.get_models()["beta"], None) is True


def test_numerapi_resumes_a_cut_download(sandbox: RunningSandbox, napi: numerapi.NumerAPI,
                                         tmp_path: Path) -> None:
    dest = tmp_path / "live.parquet"
    sandbox.set_faults(cut_download_after_bytes=20_000)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        napi.download_dataset("v5.3/live.parquet", str(dest))
    sandbox.clear_faults()
    # numerapi left a .temp file; its resume asks for the rest with a Range header.
    assert Path(str(dest) + ".temp").exists()
    napi.download_dataset("v5.3/live.parquet", str(dest))
    assert len(pd.read_parquet(dest)) == sandbox.settings.sizes.live_rows
    downloads = sandbox.downloads()
    assert (downloads[0]["bytes_sent"], downloads[0]["completed"]) == (20_000, False)
    assert (downloads[-1]["status_code"], downloads[-1]["completed"]) == (206, True)


def test_signals_and_crypto_uploads_with_numerapi(sandbox: RunningSandbox,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    monkeypatch.setattr(numerapi.base_api, "API_TOURNAMENT_URL", sandbox.url)
    monkeypatch.delenv("TRIGGER_ID", raising=False)
    signals = numerapi.SignalsAPI(  # type: ignore[no-untyped-call]
        sandbox.public_id, sandbox.secret_key, show_progress_bars=False)
    signals.logger.setLevel(logging.WARNING)
    assert signals.get_current_round() == sandbox.settings.start_round
    assert signals.get_models() == {"sig": sandbox.models["sig"]}
    path = signals.download_dataset("signals/v2.1/live.parquet", str(tmp_path / "s.parquet"))
    tickers = pd.read_parquet(path)["numerai_ticker"]
    frame = pd.DataFrame({"numerai_ticker": tickers,
                          "signal": [(i + 1) / (len(tickers) + 1) for i in range(len(tickers))]})
    signals.upload_predictions(df=frame, model_id=sandbox.models["sig"])

    crypto = numerapi.CryptoAPI(  # type: ignore[no-untyped-call]
        sandbox.public_id, sandbox.secret_key, show_progress_bars=False)
    crypto.logger.setLevel(logging.WARNING)
    path = crypto.download_dataset("crypto/v2.0/live_universe.parquet",
                                   str(tmp_path / "c.parquet"))
    symbols = pd.read_parquet(path)["symbol"]
    frame = pd.DataFrame({"symbol": symbols,
                          "signal": [(i + 1) / (len(symbols) + 1) for i in range(len(symbols))]})
    crypto.upload_predictions(df=frame, model_id=sandbox.models["cry"])

    recorded = {s["model_name"]: s for s in sandbox.submissions()}
    assert recorded["sig"]["tournament"] == 11 and recorded["sig"]["trigger_id"] is None
    assert recorded["cry"]["tournament"] == 12
    assert recorded["sig"]["row_count"] == len(tickers)
