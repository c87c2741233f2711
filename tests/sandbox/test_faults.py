"""Fault injection: 5xx, dropped connections, latency, Numerai's HTTP-200 GraphQL errors,
redirects, failing PUTs, throttled and cut downloads, downtime; deterministic from the seed;
the control API is never faulted."""

from __future__ import annotations

import time
from collections.abc import Mapping
from urllib.parse import urlsplit

import httpx
import pytest
from sandbox_helpers import (
    CREATE,
    CURRENT_ROUND,
    DATASET,
    UPLOAD_AUTH,
    error_message,
    predictions_csv,
)

from numerai_autopilot.sandbox import SandboxSettings, create_app
from numerai_autopilot.sandbox.faults import FaultConfig
from numerai_autopilot.sandbox.injection import ConnectionDropped
from numerai_autopilot.sandbox.testing import RunningSandbox

ROUND = {"query": CURRENT_ROUND, "variables": {"tournament": 8}}
LIST = {"query": "query { listDatasets(tournament: 8) }"}


def _status(sandbox: RunningSandbox, payload: Mapping[str, object]) -> int:
    return httpx.post(sandbox.url, json=payload).status_code


def test_error_rate_per_operation(sandbox: RunningSandbox) -> None:
    sandbox.set_faults(operations={"rounds": {"error_rate": 1.0, "error_status": 502}})
    response = httpx.post(sandbox.url, json=ROUND)
    assert response.status_code == 502 and "Bad Gateway" in response.text
    assert _status(sandbox, LIST) == 200
    injected = httpx.get(f"{sandbox.url}/_sandbox/faults").json()["injected"]
    assert [(i["operation"], i["kind"]) for i in injected] == [("rounds", "error")]


def test_times_limits_the_faults(sandbox: RunningSandbox) -> None:
    sandbox.set_faults(operations={"*": {"error_rate": 1.0, "times": 2}})
    assert [_status(sandbox, ROUND) for _ in range(4)] == [503, 503, 200, 200]


def test_specific_rule_wins_over_star(sandbox: RunningSandbox) -> None:
    sandbox.set_faults(operations={"*": {"error_rate": 1.0},
                                   "listDatasets": {"error_rate": 0.0}})
    assert _status(sandbox, LIST) == 200
    assert _status(sandbox, ROUND) == 503
    # "*" covers the file endpoints too.
    sandbox.clear_faults()
    url = sandbox.graphql(DATASET, {"filename": "v5.3/features.json"})["data"]["dataset"]
    sandbox.set_faults(operations={"*": {"error_rate": 1.0}})
    response = httpx.get(url)
    assert response.status_code == 503 and "<Code>ServiceUnavailable</Code>" in response.text


def test_dropped_connection_looks_like_one(sandbox: RunningSandbox) -> None:
    sandbox.set_faults(operations={"rounds": {"drop_rate": 1.0}})
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        httpx.post(sandbox.url, json=ROUND)
    assert _status(sandbox, LIST) == 200  # the server is fine afterwards


async def test_dropped_connection_in_process_raises(sandbox_settings: SandboxSettings) -> None:
    """Without a socket (httpx's ASGITransport) a drop surfaces as an exception."""
    app = create_app(sandbox_settings)
    app.state.sandbox.faults.set(FaultConfig.model_validate(
        {"operations": {"rounds": {"drop_rate": 1.0}}}))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        with pytest.raises(ConnectionDropped):
            await client.post("/", json=ROUND)
        assert (await client.post("/", json=LIST)).status_code == 200


def test_graphql_errors_come_with_http_200(sandbox: RunningSandbox) -> None:
    sandbox.set_faults(operations={"rounds": {"graphql_error_rate": 1.0, "times": 1}})
    response = httpx.post(sandbox.url, json=ROUND)
    # As numerai/numerapi#15 shows Numerai failing.
    assert response.status_code == 200
    assert response.json() == {"data": {"rounds": None}, "errors": [
        {"message": "Internal server error", "path": ["rounds"]}]}
    assert httpx.post(sandbox.url, json=ROUND).json()["data"]["rounds"]  # times: 1
    sandbox.set_faults(operations={"*": {"graphql_error_rate": 1.0,
                                         "graphql_error_message": "Request timed out",
                                         "graphql_error_code": "TIMEOUT"}})
    (error,) = httpx.post(sandbox.url, json=LIST).json()["errors"]
    assert error == {"message": "Request timed out", "path": ["listDatasets"],
                     "extensions": {"code": "TIMEOUT"}}
    sandbox.clear_faults()
    url = sandbox.graphql(DATASET, {"filename": "v5.3/features.json"})["data"]["dataset"]
    sandbox.set_faults(operations={"*": {"graphql_error_rate": 1.0}})
    assert httpx.get(url).status_code == 200  # GraphQL errors touch GraphQL requests only


def test_a_graphql_error_after_the_operation_ran(sandbox: RunningSandbox) -> None:
    auth = sandbox.graphql(UPLOAD_AUTH, {"filename": "p.csv", "tournament": 8,
                                         "modelId": sandbox.models["alpha"]})
    target = auth["data"]["submission_upload_auth"]
    assert httpx.put(target["url"], content=predictions_csv(sandbox)).status_code == 200
    sandbox.set_faults(operations={"create_submission": {"graphql_error_rate": 1.0,
                                                         "graphql_error_after": True}})
    body = sandbox.graphql(CREATE, {"filename": target["filename"], "tournament": 8,
                                    "modelId": sandbox.models["alpha"], "triggerId": "t1"})
    assert error_message(body) == "Internal server error"
    assert [s["trigger_id"] for s in sandbox.submissions()] == ["t1"]  # it took effect


def test_redirects_keep_the_query_and_end_at_the_file(sandbox: RunningSandbox) -> None:
    url = sandbox.graphql(DATASET, {"filename": "v5.3/features.json"})["data"]["dataset"]
    parts = urlsplit(url)
    sandbox.set_faults(operations={"download": {"redirects": 2, "redirect_status": 302}})
    first = httpx.get(url)
    assert first.status_code == 302
    assert first.headers["location"] == f"/_redirect/302/1{parts.path}?{parts.query}"
    second = httpx.get(sandbox.url + first.headers["location"])
    assert second.headers["location"] == f"/_redirect/302/0{parts.path}?{parts.query}"
    followed = httpx.get(url, follow_redirects=True)
    assert followed.status_code == 200 and followed.json()["feature_sets"]
    assert len(followed.history) == 2
    assert [d["query"] for d in sandbox.downloads()] == [parts.query]
    sandbox.set_faults(operations={"put": {"redirects": 1}})
    put = httpx.put(f"{sandbox.url}/uploads/m/n/p.csv?expires=1", content=b"x")
    assert (put.status_code, put.headers["location"]) == (
        307, "/_redirect/307/0/uploads/m/n/p.csv?expires=1")
    assert httpx.get(f"{sandbox.url}/_redirect/x/0/files").status_code == 404


def test_latency(sandbox: RunningSandbox) -> None:
    sandbox.set_faults(operations={"rounds": {"latency_ms": 300}})
    started = time.monotonic()
    assert _status(sandbox, ROUND) == 200
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    assert _status(sandbox, LIST) == 200
    assert time.monotonic() - started < 0.3


def test_failing_puts(sandbox: RunningSandbox) -> None:
    sandbox.set_faults(put_failure_rate=1.0)
    auth = sandbox.graphql(UPLOAD_AUTH, {"filename": "p.csv", "tournament": 8,
                                         "modelId": sandbox.models["alpha"]})
    target = auth["data"]["submission_upload_auth"]
    response = httpx.put(target["url"], content=b"id,prediction\nn1,0.5\n")
    assert response.status_code == 500 and "InternalError" in response.text
    assert [u["status_code"] for u in sandbox.uploads()] == [500]
    body = sandbox.graphql(CREATE, {"filename": target["filename"], "tournament": 8,
                                    "modelId": sandbox.models["alpha"]})
    assert "never uploaded" in error_message(body)


def test_put_operation_rule(sandbox: RunningSandbox) -> None:
    auth = sandbox.graphql(UPLOAD_AUTH, {"filename": "p.csv", "tournament": 8,
                                         "modelId": sandbox.models["alpha"]})
    sandbox.set_faults(operations={"put": {"drop_rate": 1.0}})
    with pytest.raises(httpx.TransportError):
        httpx.put(auth["data"]["submission_upload_auth"]["url"], content=b"id,prediction\n")


def test_bandwidth_limit_throttles_downloads(sandbox: RunningSandbox) -> None:
    url = sandbox.graphql(DATASET, {"filename": "v5.3/live.parquet"})["data"]["dataset"]
    size = int(httpx.head(url).headers["content-length"])
    sandbox.set_faults(bandwidth_bytes_per_s=size * 2)  # half a second for the file
    started = time.monotonic()
    response = httpx.get(url)
    elapsed = time.monotonic() - started
    assert len(response.content) == size
    assert 0.4 <= elapsed < 5


def test_cut_download_then_resume(sandbox: RunningSandbox) -> None:
    url = sandbox.graphql(DATASET, {"filename": "v5.3/live.parquet"})["data"]["dataset"]
    whole = httpx.get(url).content
    sandbox.set_faults(cut_download_after_bytes=10_000)
    received = b""
    for _ in range(20):
        headers = {"Range": f"bytes={len(received)}-"} if received else {}
        try:
            with httpx.stream("GET", url, headers=headers) as response:
                for chunk in response.iter_bytes():
                    received += chunk
            break
        except httpx.RemoteProtocolError:
            continue
    assert received == whole
    records = sandbox.downloads()[1:]
    assert records[0]["bytes_sent"] == 10_000 and not records[0]["completed"]
    assert records[-1]["completed"] and len(records) == -(-len(whole) // 10_000)


def test_down_for_seconds(sandbox: RunningSandbox) -> None:
    url = sandbox.graphql(DATASET, {"filename": "v5.3/features.json"})["data"]["dataset"]
    sandbox.set_faults(down_for_s=0.6)
    assert _status(sandbox, ROUND) == 503
    assert httpx.get(url).status_code == 503
    assert httpx.get(f"{sandbox.url}/_sandbox/state").status_code == 200  # control API works
    time.sleep(0.7)
    assert _status(sandbox, ROUND) == 200


def test_faults_are_deterministic_from_the_seed(sandbox: RunningSandbox) -> None:
    def run() -> list[int]:
        sandbox.set_faults(seed=7, operations={"*": {"error_rate": 0.5}})
        return [_status(sandbox, ROUND) for _ in range(16)]

    first = run()
    assert first == run()
    assert 200 in first and 503 in first


def test_delete_clears_and_bad_config_is_refused(sandbox: RunningSandbox) -> None:
    sandbox.set_faults(operations={"*": {"error_rate": 1.0}})
    sandbox.clear_faults()
    assert _status(sandbox, ROUND) == 200
    for bad in ({"operations": {"*": {"error_rate": 2}}}, {"nonsense": 1},
                {"operations": {"rounds": {"error_status": 404}}},
                {"operations": {"rounds": {"redirect_status": 200}}},
                {"operations": {"rounds": {"graphql_error_message": ""}}}):
        response = httpx.post(f"{sandbox.url}/_sandbox/faults", json=bad)
        assert response.status_code == 422 and "invalid faults" in response.json()["error"]
