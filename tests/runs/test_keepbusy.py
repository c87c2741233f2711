"""Keep-busy: where its requests go for each setting, and a real server holding one to itself
while a run is unfinished (and none once the run is final)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest
from server_harness import AUTH, SECRET, make_config, predictor, sandbox_env
from server_process import ServerProcess

from numerai_autopilot.config import ServerSettings
from numerai_autopilot.config.tokens import webhook_url
from numerai_autopilot.errors import ConfigError
from numerai_autopilot.ledger import Ledger, RunState
from numerai_autopilot.runs.keepbusy import keep_busy_token, keep_busy_url
from numerai_autopilot.sandbox.testing import RunningSandbox

RUN_APP = "https://autopilot-abc123-ew.a.run.app"
CLOUD_RUN = {"K_SERVICE": "autopilot", "K_REVISION": "autopilot-00001-abc"}


@pytest.mark.parametrize(("settings", "env", "host", "expected"), [
    ({}, {}, "0.0.0.0", None),  # auto, not under Cloud Run
    ({"public_url": RUN_APP}, {}, "0.0.0.0", None),
    ({}, CLOUD_RUN, "0.0.0.0", None),  # auto under Cloud Run, its URL unknown
    ({"public_url": RUN_APP + "/"}, CLOUD_RUN, "0.0.0.0", RUN_APP + "/internal/keepalive"),
    ({"public_url": RUN_APP, "keep_busy": "off"}, CLOUD_RUN, "0.0.0.0", None),
    ({"keep_busy": "on"}, {}, "0.0.0.0", "http://127.0.0.1:8080/internal/keepalive"),
    ({"keep_busy": "on"}, {}, "::", "http://127.0.0.1:8080/internal/keepalive"),
    ({"keep_busy": "on"}, {}, "10.1.2.3", "http://10.1.2.3:8080/internal/keepalive"),
    ({"keep_busy": "on"}, {}, "::1", "http://[::1]:8080/internal/keepalive"),
    ({"keep_busy": "on", "public_url": RUN_APP}, CLOUD_RUN, "0.0.0.0",
     RUN_APP + "/internal/keepalive"),
])
def test_where_the_requests_go(settings: dict[str, str], env: dict[str, str], host: str,
                               expected: str | None) -> None:
    assert keep_busy_url(ServerSettings(**settings), env, host=host, port=8080) == expected


def test_on_under_cloud_run_without_its_url_names_the_key_and_the_fix() -> None:
    with pytest.raises(ConfigError) as caught:
        keep_busy_url(ServerSettings(keep_busy="on"), CLOUD_RUN, host="0.0.0.0", port=8080,
                      source="/app/autopilot.toml")
    message = str(caught.value)
    assert message.startswith("/app/autopilot.toml: server.keep_busy: ")
    assert "server.public_url" in message and "AUTOPILOT_SERVER_PUBLIC_URL" in message


def test_the_token_is_not_a_webhook_token() -> None:
    token = keep_busy_token(SECRET)
    assert len(token) == 64 and token != keep_busy_token(SECRET + "x")
    assert token not in webhook_url("http://x", "keep-busy", SECRET)


def _held(url: str) -> float:
    metrics = httpx.get(f"{url}/metrics", headers=AUTH, timeout=10).text
    line = next(m for m in metrics.splitlines() if m.startswith("autopilot_keep_busy_requests "))
    return float(line.split()[1])


def test_a_server_holds_a_request_to_itself_while_a_run_is_unfinished(
    tmp_path: Path, sandbox: RunningSandbox
) -> None:
    config = make_config(tmp_path, sandbox, {"alpha": predictor("slow")},
                         server_keep_busy="on")
    server = ServerProcess(tmp_path / "autopilot.toml", sandbox_env(sandbox),
                           tmp_path / "server.log")
    try:
        server.ready()
        assert _held(server.url) == 0  # nothing unfinished: nothing held
        round_number = sandbox.state()["current_rounds"]["8"]["number"]
        answer = httpx.post(webhook_url(server.url, sandbox.models["alpha"], SECRET), json={
            "roundNumber": round_number, "dataVersion": 1, "triggerId": str(uuid.uuid4())})
        run_id = answer.json()["run_id"]
        ledger = Ledger.from_url(config.ledger.url)
        held = []
        while (run := ledger.get(run_id)) is not None and not run.is_final:
            held.append(_held(server.url))
        assert run is not None and run.state is RunState.SUBMITTED, run
        assert 1 in held  # the slow model predicts for 4 s
        deadline = time.monotonic() + 30
        while _held(server.url) != 0:  # answered at the next look at the ledger
            assert time.monotonic() < deadline, "the keep-busy request is still held"
            time.sleep(0.1)
        log = server.log_text()
        assert keep_busy_token(SECRET) not in log and "keep-busy: the request" not in log
        ledger.close()
    finally:
        server.stop()
