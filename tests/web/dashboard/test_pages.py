"""The dashboard over plain HTTP (no JavaScript): sign-in, CSRF, pages, actions, JSON API."""

from __future__ import annotations

import re

import httpx
from app_harness import ADMIN_TOKEN, PASSWORD, USER, App, StartApp, pool

from numerai_autopilot.ledger import RunState


def csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def sign_in(app: App, username: str = USER, password: str = PASSWORD) -> httpx.Client:
    client = httpx.Client(base_url=app.url, timeout=30)
    page = client.get("/login")
    answer = client.post("/login", data={"csrf": csrf(page.text), "username": username,
                                         "password": password, "next": "/"})
    assert answer.status_code == 303, answer.text
    return client


def test_pages_need_a_sign_in_and_wrong_passwords_are_refused(start_app: StartApp) -> None:
    app = start_app({"alpha": pool("good")})
    with httpx.Client(base_url=app.url) as client:
        for path in ("/", "/models/alpha", "/runs/x"):
            answer = client.get(path)
            assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
        assert client.get("/fragments/grid").status_code == 401
        page = client.get("/login")
        assert page.headers["x-frame-options"] == "DENY"
        for user, password in ((USER, "wrong"), ("eve", PASSWORD), ("", "not-the-token")):
            answer = client.post("/login", data={"csrf": csrf(page.text), "username": user,
                                                 "password": password})
            assert answer.status_code == 401 and "Wrong user name" in answer.text
            assert client.get("/").status_code == 303
        # the login form itself needs the CSRF token of the session it was served with
        answer = client.post("/login", data={"username": USER, "password": PASSWORD})
        assert answer.status_code == 403
        # an admin token signs in without a user name
        answer = client.post("/login", data={"csrf": csrf(page.text), "username": "",
                                             "password": ADMIN_TOKEN, "next": "//evil.example/"})
        assert answer.status_code == 303 and answer.headers["location"] == "/"
        assert client.get("/").status_code == 200


def test_grid_run_page_actions_and_csrf(start_app: StartApp) -> None:
    app = start_app({"alpha": pool("good"), "beta": pool("raises")})
    app.register_webhooks()
    number = app.sandbox.open_round()["number"]
    runs = app.wait_final(2)
    failed = next(r for r in runs if r.model_name == "beta")
    assert failed.state is RunState.FAILED
    client = sign_in(app)
    home = client.get("/")
    assert home.status_code == 200
    assert re.search(rf'data-model="alpha" data-round="{number}" data-status="submitted"', home.text)
    assert re.search(rf'data-model="beta" data-round="{number}" data-status="failed"', home.text)
    page = client.get(f"/runs/{failed.id}")
    assert "model file is corrupt" in page.text and failed.trigger_id in page.text
    assert "predicting" in page.text  # the stage it failed in

    # a POST without (or with a wrong) CSRF token changes nothing
    assert client.post(f"/runs/{failed.id}/rerun").status_code == 403
    assert client.post(f"/runs/{failed.id}/rerun", data={"csrf": "guess"}).status_code == 403
    assert app.runtime.ledger.get(failed.id).state is RunState.FAILED  # type: ignore[union-attr]

    answer = client.post(f"/runs/{failed.id}/rerun", data={"csrf": csrf(page.text)})
    assert answer.status_code == 303 and answer.headers["location"] == f"/runs/{failed.id}"
    assert "Queued again." in client.get(f"/runs/{failed.id}").text
    rerun = app.wait_final(2)
    again = next(r for r in rerun if r.id == failed.id)
    assert again.state is RunState.FAILED and again.attempts == 2

    model = client.get("/models/alpha")
    assert "predictor" in model.text and app.config.models["alpha"].predictor in model.text
    answer = client.post("/models/alpha/run", data={"csrf": csrf(model.text)})
    assert answer.status_code == 303
    manual = [r for r in app.runs() if r.source == "manual"]
    assert len(manual) == 1 and manual[0].model_name == "alpha"

    answer = client.post("/models/alpha/test-trigger", data={"csrf": csrf(model.text)})
    assert answer.status_code == 303
    assert "Test trigger" in client.get("/models/alpha").text
    deadline_runs = app.wait_final(4)
    assert any(r.is_test and r.model_name == "alpha" for r in deadline_runs)

    answer = client.post("/logout", data={"csrf": csrf(model.text)})
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    assert client.get("/").status_code == 303


def test_json_api_rounds_and_models(start_app: StartApp) -> None:
    app = start_app({"alpha": pool("good"), "gamma": pool("good")})
    app.register_webhooks()
    number = app.sandbox.open_round()["number"]
    app.wait_final(2)
    assert httpx.get(f"{app.url}/api/rounds").status_code == 401
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    rounds = httpx.get(f"{app.url}/api/rounds", headers=auth).json()
    latest = rounds[0]
    assert latest["number"] == number and latest["tournament"] == 8
    assert {m: c["status"] for m, c in latest["models"].items()} == {
        "alpha": "submitted", "gamma": "submitted"}
    assert latest["models"]["alpha"]["after_open_s"] > 0
    models = httpx.get(f"{app.url}/api/models", headers=auth).json()
    assert [m["name"] for m in models] == ["alpha", "gamma"]
    assert models[0]["last_submission"]["round"] == number
    assert "secret" not in str(models).lower()
    paths = httpx.get(f"{app.url}/openapi.json").json()["paths"]
    assert {"/api/rounds", "/api/models", "/metrics"} <= set(paths)
    assert "/login" not in paths
    # a signed-in browser may read the API with its cookie (GET only)
    client = sign_in(app)
    assert client.get("/api/models").status_code == 200
