"""The seed's Cloud Run template, reproduced for the benchmark's baseline.

All the work happens inside the webhook request, as in the template: the request downloads
the live data itself with `numerapi` (into the request's own temporary directory, as a fresh
Cloud Run instance would), predicts, writes the CSV and uploads it with `numerapi`, then
answers. The benchmark sends one request per model and waits for each (concurrency 1).
The model's predictor stays loaded between requests (a warm instance), which favours the
baseline. The trigger id is not sent back, as in the template.

    BENCH_API_URL=http://127.0.0.1:8700 BENCH_MODELS=DIR NUMERAI_PUBLIC_ID=.. \\
    NUMERAI_SECRET_KEY=.. uvicorn baseline_app:app --port 8800
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path
from types import ModuleType

import numerapi
import numerapi.base_api
import pandas as pd
from fastapi import FastAPI

numerapi.base_api.API_TOURNAMENT_URL = os.environ["BENCH_API_URL"]
MODELS = Path(os.environ["BENCH_MODELS"])
DATA_VERSION = "v5.3"

app = FastAPI()
napi = numerapi.NumerAPI(os.environ["NUMERAI_PUBLIC_ID"],  # type: ignore[no-untyped-call]
                         os.environ["NUMERAI_SECRET_KEY"])
_loaded: dict[str, ModuleType] = {}


def _predictor(model_name: str) -> ModuleType:
    module = _loaded.get(model_name)
    if module is None:
        spec = importlib.util.spec_from_file_location(f"baseline_{model_name}",
                                                      MODELS / f"{model_name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _loaded[model_name] = module
    return module


@app.get("/healthz")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/pred/{model_id}")
def pred(model_id: str, model: str) -> dict[str, str]:
    current_round = napi.get_current_round()
    with tempfile.TemporaryDirectory() as tmp:
        live_path = f"{tmp}/live_{current_round}.parquet"
        napi.download_dataset(f"{DATA_VERSION}/live.parquet", live_path)
        live_features = pd.read_parquet(live_path)
        predictions = _predictor(model).predict(live_features)
        csv_path = f"{tmp}/predictions_{current_round}.csv"
        predictions["prediction"].to_frame().to_csv(csv_path)
        submission_id = napi.upload_predictions(csv_path, model_id=model_id)
    return {"submission_id": str(submission_id)}
