"""Fault injection: 5xx, dropped connections, latency, failing PUTs, throttled and cut
downloads, downtime; deterministic from the seed; the control API is never faulted."""

from __future__ import annotations

import time
from collections.abc import Mapping

import httpx
import pytest
from sandbox_helpers import CREATE, CURRENT_ROUND, DATASET, UPLOAD_AUTH, error_message

from numerai_autopilot.sandbox import SandboxSettings, create_app
from numerai_autopilot.sandbox.faults import ConnectionDropped, FaultConfig
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
                {"operations": {"rounds": {"error_status": 404}}}):
        response = httpx.post(f"{sandbox.url}/_sandbox/faults", json=bad)
        assert response.status_code == 422 and "invalid faults" in response.json()["error"]
