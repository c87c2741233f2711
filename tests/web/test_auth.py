"""No open mode: the dashboard, the JSON API and /metrics answer only a credential, whatever
address or Host a request comes with; /metrics opens to scrapers only when configured."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from server_harness import ADMIN_TOKEN, AUTH, StartServer, predictor

from numerai_autopilot.config import MAKE_ONE, parse_config
from numerai_autopilot.errors import ConfigError
from numerai_autopilot.web import create_app

# What a browser page of a DNS-rebound site on this machine sends, and what a reverse proxy
# on this machine that adds no X-Forwarded-For passes on: both arrive from 127.0.0.1.
REBOUND = {"Host": "rebind.attacker.example"}
PROXIED = {"Host": "autopilot.example.com", "X-Forwarded-Proto": "https"}


def test_a_local_request_without_a_credential_gets_nothing(start_server: StartServer) -> None:
    server = start_server({"alpha": predictor("good")}, server_admin_token=None)
    with httpx.Client(base_url=server.url) as attacker:
        for headers in (REBOUND, PROXIED, {}):
            for path in ("/", "/models/alpha", "/runs/x"):
                page = attacker.get(path, headers=headers)
                assert page.status_code == 303 and page.headers["location"].startswith("/login")
            assert attacker.get("/fragments/grid", headers=headers).status_code == 401
            for path in ("/api/runs", "/api/models", "/metrics"):
                answer = attacker.get(path, headers=headers)
                assert answer.status_code == 401, (path, answer.text)
                assert answer.headers["www-authenticate"] == "Bearer"
            login = attacker.get("/login", headers=headers)
            assert login.status_code == 200 and "No sign-in is configured" in login.text
            assert 'name="password"' not in login.text  # no form: nothing to guess
            run = attacker.post("/models/alpha/run", data={"csrf": "x"}, headers=headers)
            assert run.status_code == 303 and run.headers["location"].startswith("/login")
            for guess in ("", "admin", "local"):  # no page hands out a CSRF token to send
                answer = attacker.post("/login", headers=headers, data={
                    "csrf": "", "username": guess, "password": guess})
                assert answer.status_code == 403
                assert attacker.get("/", headers=headers).status_code == 303
    assert server.runs() == []


def test_the_admin_token_opens_the_api_and_metrics(start_server: StartServer) -> None:
    server = start_server({"alpha": predictor("good")})
    assert httpx.get(f"{server.url}/api/runs", headers=AUTH).status_code == 200
    assert httpx.get(f"{server.url}/metrics", headers=AUTH).status_code == 200
    wrong = {"Authorization": f"Bearer {ADMIN_TOKEN[:-1]}x"}
    assert httpx.get(f"{server.url}/api/runs", headers=wrong).status_code == 401
    assert httpx.get(f"{server.url}/metrics", headers=wrong).status_code == 401


def test_metrics_public_opens_metrics_only(start_server: StartServer) -> None:
    server = start_server({"alpha": predictor("good")}, server_metrics_public=True)
    scraped = httpx.get(f"{server.url}/metrics", headers=REBOUND)
    assert scraped.status_code == 200 and "autopilot_" in scraped.text
    assert httpx.get(f"{server.url}/api/runs", headers=REBOUND).status_code == 401
    assert httpx.get(f"{server.url}/", headers=REBOUND).status_code == 303


def test_a_server_without_a_secret_says_where_to_put_one(tmp_path: Path) -> None:
    """No secret: no server (anyone could forge the tokens), and the message says where a
    secret goes (the environment or .env, not the config) and how to make one."""
    config = parse_config("[server]\n", source="autopilot.toml", base_dir=tmp_path, env={})
    with pytest.raises(ConfigError) as refused:
        create_app(config)
    message = str(refused.value)
    assert message.startswith("autopilot.toml: server.secret: required"), message
    assert "AUTOPILOT_SECRET in the environment or the .env file" in message
    assert MAKE_ONE in message
