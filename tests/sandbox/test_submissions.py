"""Uploads and submissions: what is recorded, and what Numerai would refuse."""

from __future__ import annotations

import hashlib

import httpx
import pandas as pd
from sandbox_helpers import (
    CREATE,
    SUBMISSIONS,
    UPLOAD_AUTH,
    error_message,
    live_frame,
    predictions_csv,
    upload,
)

from numerai_autopilot.sandbox.testing import RunningSandbox


def test_submission_recorded_with_trigger_rows_and_hash(sandbox: RunningSandbox) -> None:
    data = predictions_csv(sandbox)
    created = upload(sandbox, "beta", data, trigger_id="trig-123")
    submission_id = created["data"]["create_submission"]["id"]
    [sub] = sandbox.submissions()
    assert sub["id"] == submission_id
    assert (sub["model_name"], sub["model_id"]) == ("beta", sandbox.models["beta"])
    assert (sub["trigger_id"], sub["row_count"]) == ("trig-123", 500)
    assert sub["sha256"] == hashlib.sha256(data).hexdigest()
    assert sub["round_number"] == sandbox.settings.start_round
    listed = sandbox.graphql(SUBMISSIONS, {"modelId": sandbox.models["beta"]})
    [entry] = listed["data"]["submissions"]
    assert entry["triggerId"] == "trig-123"
    assert entry["round"] == {"number": sandbox.settings.start_round, "tournament": 8}
    assert entry["insertedAt"].endswith("Z")
    # The uploaded bytes are kept on disk too.
    stored = sandbox.settings.data_dir / "uploads" / sub["filename"]
    assert stored.read_bytes() == data


def test_parquet_submission_with_id_index(sandbox: RunningSandbox) -> None:
    live = live_frame(sandbox)
    frame = pd.DataFrame({"prediction": [(i + 1) / 501 for i in range(500)]}, index=live.index)
    created = upload(sandbox, "alpha", frame.to_parquet(), filename="preds.parquet")
    assert created["data"]["create_submission"]["id"]


def test_put_without_create_is_recorded(sandbox: RunningSandbox) -> None:
    auth = sandbox.graphql(UPLOAD_AUTH, {"filename": "p.csv", "tournament": 8,
                                         "modelId": sandbox.models["alpha"]})
    target = auth["data"]["submission_upload_auth"]
    assert httpx.put(target["url"], content=predictions_csv(sandbox)).status_code == 200
    [record] = sandbox.uploads()
    assert (record["filename"], record["status_code"], record["row_count"]) == (
        target["filename"], 200, 500)
    assert sandbox.submissions() == []


def test_create_without_put_is_refused(sandbox: RunningSandbox) -> None:
    auth = sandbox.graphql(UPLOAD_AUTH, {"filename": "p.csv", "tournament": 8,
                                         "modelId": sandbox.models["alpha"]})
    filename = auth["data"]["submission_upload_auth"]["filename"]
    body = sandbox.graphql(CREATE, {"filename": filename, "tournament": 8,
                                    "modelId": sandbox.models["alpha"]})
    assert "never uploaded" in error_message(body)
    body = sandbox.graphql(CREATE, {"filename": "made/up/name.csv", "tournament": 8,
                                    "modelId": sandbox.models["alpha"]})
    assert "Submission file not found" in error_message(body)
    # Another model cannot claim alpha's upload.
    body = sandbox.graphql(CREATE, {"filename": filename, "tournament": 8,
                                    "modelId": sandbox.models["beta"]})
    assert "Submission file not found" in error_message(body)
    assert sandbox.submissions() == []


def test_invalid_submissions_are_refused(sandbox: RunningSandbox) -> None:
    live = live_frame(sandbox)
    short = pd.DataFrame({"id": live.index[:-12], "prediction": 0.5}).to_csv(index=False)
    body = upload(sandbox, "alpha", short.encode())
    assert "12 missing" in error_message(body)
    out_of_range = pd.DataFrame({"id": live.index, "prediction": range(500)})
    body = upload(sandbox, "alpha", out_of_range.to_csv(index=False).encode())
    assert "within [0, 1]" in error_message(body)
    body = upload(sandbox, "alpha", b"ticker,signal\nA,0.5\n")
    assert "exactly two columns" in error_message(body)
    body = upload(sandbox, "alpha", b"\x00\x01garbage", filename="p.parquet")
    assert "could not read" in error_message(body)
    auth = sandbox.graphql(UPLOAD_AUTH, {"filename": "p.txt", "tournament": 8,
                                         "modelId": sandbox.models["alpha"]})
    assert "Invalid file type" in error_message(auth)
    assert sandbox.submissions() == []


def test_latest_submission_of_a_round_is_selected(sandbox: RunningSandbox) -> None:
    data = predictions_csv(sandbox)
    upload(sandbox, "alpha", data, trigger_id="first")
    upload(sandbox, "alpha", data, trigger_id="second")
    subs = sandbox.submissions()
    assert [(s["trigger_id"], s["selected"]) for s in subs] == [
        ("first", False), ("second", True)]


def test_closed_round_refuses_submissions(sandbox: RunningSandbox) -> None:
    data = predictions_csv(sandbox)
    auth = sandbox.graphql(UPLOAD_AUTH, {"filename": "p.csv", "tournament": 8,
                                         "modelId": sandbox.models["alpha"]})
    target = auth["data"]["submission_upload_auth"]
    assert httpx.put(target["url"], content=data).status_code == 200
    sandbox.close_round()
    body = sandbox.graphql(CREATE, {"filename": target["filename"], "tournament": 8,
                                    "modelId": sandbox.models["alpha"]})
    assert error_message(body) == "Current round not open for submissions"
    body = sandbox.graphql(UPLOAD_AUTH, {"filename": "p.csv", "tournament": 8,
                                         "modelId": sandbox.models["alpha"]})
    assert error_message(body) == "Current round not open for submissions"
