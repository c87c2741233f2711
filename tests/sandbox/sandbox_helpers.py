"""Queries and small helpers shared by the sandbox tests."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pandas as pd

from numerai_autopilot.sandbox.testing import RunningSandbox

UPLOAD_AUTH = """
query($filename: String! $tournament: Int! $modelId: String) {
  submission_upload_auth(filename: $filename tournament: $tournament modelId: $modelId) {
    filename url
  }
}"""
SIGNALS_UPLOAD_AUTH = """
query($filename: String! $tournament: Int! $modelId: String) {
  submissionUploadSignalsAuth(filename: $filename tournament: $tournament modelId: $modelId) {
    filename url
  }
}"""
CREATE = """
mutation($filename: String! $tournament: Int! $modelId: String $triggerId: String) {
  create_submission(filename: $filename tournament: $tournament modelId: $modelId
                    triggerId: $triggerId source: "test") { id }
}"""
CREATE_SIGNALS = """
mutation($filename: String! $modelId: String $triggerId: String) {
  createSignalsSubmission(filename: $filename modelId: $modelId triggerId: $triggerId) {
    id firstEffectiveDate
  }
}"""
DATASET = """
query($filename: String! $round: Int $tournament: Int) {
  dataset(filename: $filename round: $round tournament: $tournament)
}"""
CURRENT_ROUND = """
query($tournament: Int!) {
  rounds(tournament: $tournament number: 0) { number openTime closeTime closeStakingTime }
}"""
SUBMISSIONS = """
query($modelId: String) {
  submissions(modelId: $modelId) { id filename insertedAt triggerId round { number tournament } }
}"""
SET_WEBHOOK = """
mutation($modelId: String! $url: String) {
  setSubmissionWebhook(modelId: $modelId newSubmissionWebhook: $url)
}"""
TRIGGER = "mutation($modelId: String!) { triggerModelWebhook(modelId: $modelId) }"


def error_message(body: dict[str, Any]) -> str:
    assert "errors" in body, body
    message: str = body["errors"][0]["message"]
    return message


def live_frame(sb: RunningSandbox, round_number: int | None = None) -> pd.DataFrame:
    body = sb.graphql(DATASET, {"filename": "v5.3/live.parquet", "round": round_number})
    response = httpx.get(body["data"]["dataset"], timeout=30)
    response.raise_for_status()
    return pd.read_parquet(io.BytesIO(response.content))


def predictions_csv(sb: RunningSandbox) -> bytes:
    live = live_frame(sb)
    frame = pd.DataFrame({"id": live.index, "prediction": [
        (i + 1) / (len(live) + 1) for i in range(len(live))]})
    text: str = frame.to_csv(index=False)
    return text.encode()


def upload(sb: RunningSandbox, model: str, data: bytes, *, tournament: int = 8,
           filename: str = "predictions.csv", trigger_id: str | None = None
           ) -> dict[str, Any]:
    """auth -> PUT -> create; returns the create answer (asserting the PUT worked)."""
    query = SIGNALS_UPLOAD_AUTH if tournament == 11 else UPLOAD_AUTH
    field = "submissionUploadSignalsAuth" if tournament == 11 else "submission_upload_auth"
    auth = sb.graphql(query, {"filename": filename, "tournament": tournament,
                              "modelId": sb.models[model]})
    target = auth["data"][field]
    put = httpx.put(target["url"], content=data, timeout=30)
    assert put.status_code == 200, put.text
    if tournament == 11:
        return sb.graphql(CREATE_SIGNALS, {"filename": target["filename"],
                                           "modelId": sb.models[model], "triggerId": trigger_id})
    return sb.graphql(CREATE, {"filename": target["filename"], "tournament": tournament,
                               "modelId": sb.models[model], "triggerId": trigger_id})
