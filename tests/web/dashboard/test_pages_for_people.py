"""The dashboard and API as a new user meets them (issue 25): run ids by their start, the
run page's predict time, a running stage's elapsed time, the model page's settings, nothing
from a third-party host, and the pages at a phone's width in a real Chromium."""

from __future__ import annotations

import re
import time
from collections import Counter
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from app_harness import ADMIN_TOKEN, PASSWORD, USER, App, StartApp, pool

from numerai_autopilot.ledger import NewRun, RunState

ARTIFACTS = Path(__file__).parents[2] / "test-artifacts" / "dashboard"

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def sign_in(app: App) -> httpx.Client:
    client = httpx.Client(base_url=app.url, timeout=30)
    page = client.get("/login")
    answer = client.post("/login", data={"csrf": csrf(page.text), "username": USER,
                                         "password": PASSWORD, "next": "/"})
    assert answer.status_code == 303, answer.text
    return client


def _round_with_a_slow_and_a_failing_model(app: App, client: httpx.Client) -> int:
    """Open a round; while alpha predicts, its run page shows the stage's elapsed time."""
    app.register_webhooks()
    number: int = app.sandbox.open_round()["number"]
    deadline = time.monotonic() + 60
    while True:
        alpha = [r for r in app.runs() if r.model_name == "alpha"]
        if alpha and alpha[0].state is RunState.PREDICTING:
            break
        assert time.monotonic() < deadline, [r.state for r in app.runs()]
        time.sleep(0.05)
    page = client.get(f"/runs/{alpha[0].id}").text
    assert re.search(r'data-since="[^"]+">running for \d+(\.\d)? s<', page), page
    assert re.search(r'id="predict-time">running for ', page), page
    app.wait_final(2)
    return number


def test_ids_by_their_start_predict_time_settings_and_no_third_party(
    start_app: StartApp,
) -> None:
    app = start_app({"alpha": pool("slow"), "beta": pool("raises")})
    with closing(sign_in(app)) as client:
        _check_pages(app, client, _round_with_a_slow_and_a_failing_model(app, client))


def _check_pages(app: App, client: httpx.Client, number: int) -> None:
    runs = {r.model_name: r for r in app.runs()}
    alpha, beta = runs["alpha"], runs["beta"]

    # the API takes a run id's start; unknown starts are 404, shared ones 400
    view = httpx.get(f"{app.url}/api/runs/{alpha.id[:8]}", headers=AUTH)
    assert view.status_code == 200 and view.json()["id"] == alpha.id
    logs = httpx.get(f"{app.url}/api/runs/{beta.id[:9]}/logs", headers=AUTH).json()
    assert any("model file is corrupt" in line["message"] for line in logs)
    stages = httpx.get(f"{app.url}/api/runs/{alpha.id[:8]}/stages", headers=AUTH).json()
    assert stages[-1]["state"] == "uploading"
    missing = httpx.get(f"{app.url}/api/runs/zzzz/logs", headers=AUTH)
    assert missing.status_code == 404 and missing.json()["detail"] == "no run 'zzzz'"
    # 17 more runs of alpha's submitted round: recorded skipped (final), ids uuid4
    ledger = app.runtime.ledger
    for i in range(17):
        ledger.record(NewRun("alpha", alpha.model_id, 8, number, f"again-{i}", "v5.3",
                             is_test=False, source="webhook"))
    shared, count = Counter(r.id[0] for r in ledger.runs(limit=100)).most_common(1)[0]
    ambiguous = httpx.get(f"{app.url}/api/runs/{shared}", headers=AUTH)
    assert ambiguous.status_code == 400
    assert f"is the start of {count} runs' ids" in ambiguous.json()["detail"]
    assert client.get(f"/runs/{beta.id[:10]}").status_code == 200

    # the run page's predict time is its stage table's predicting time
    page = client.get(f"/runs/{alpha.id}").text
    took = re.search(r"<td>predicting</td><td>\d+</td><td[^>]*>[^<]*</td>\s*<td>([^<]+)</td>", page)
    shown = re.search(r'id="predict-time">([^<(]+)', page)
    assert took and shown, page
    assert shown.group(1).strip() == took.group(1).strip()
    assert "predictor " in page and "waiting for a worker" in page
    # and the memory it took: the worker's peak and the model's own
    assert re.search(r"worker peak \d+(\.\d+)? [MG]iB", page), page
    # a traceback or error is in a monospace block
    failed = client.get(f"/runs/{beta.id}").text
    assert re.search(r'<pre class="error" id="run-error"[^>]*>[^<]*model file is corrupt', failed)

    # the model page: every setting once, with units; the id once, as its own row
    model = client.get("/models/alpha").text
    keys = re.findall(r"<tr><th>([^<]+)</th>", model)
    assert len(keys) == len(set(keys)), keys
    assert "model id" in keys and "model_id" not in keys and "name" not in keys
    settings = dict(re.findall(r"<tr><th>([^<]+)</th><td><code>([^<]*)</code>", model))
    assert settings["timeout"] == "10 min 00 s" and settings["memory"] == "not set"

    # nothing from another host: no Swagger UI from a CDN; the schema is linked instead
    for path in ("/docs", "/redoc"):
        assert httpx.get(f"{app.url}{path}", headers=AUTH).status_code == 404
    assert httpx.get(f"{app.url}/openapi.json", headers=AUTH).status_code == 200
    for html in (client.get("/").text, page, failed, model):
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
        assert 'href="/openapi.json"' in html


@pytest.mark.browser
@pytest.mark.timeout(240)
def test_pages_fit_a_phone_and_load_only_from_the_server(
    start_app: StartApp, browser: object
) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    app = start_app({"alpha": pool("slow"), "beta": pool("raises")})
    with closing(sign_in(app)) as client:
        _round_with_a_slow_and_a_failing_model(app, client)
    failed = next(r for r in app.runs() if r.model_name == "beta")
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.set_default_timeout(30_000)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(app.url + "/login")
    page.fill("input[name=username]", USER)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(app.url + "/")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for path, shot in ((f"/runs/{failed.id}", "phone-run"), ("/", "phone-rounds"),
                       ("/models/alpha", "phone-model")):
        page.goto(app.url + path)
        page.wait_for_load_state("networkidle")
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
        page.screenshot(path=str(ARTIFACTS / f"{shot}.png"), full_page=True)
        assert overflow <= 0, f"{path} scrolls sideways by {overflow} px at 390 px"
    page.goto(app.url + f"/runs/{failed.id}")
    font = page.eval_on_selector("#run-error", "el => getComputedStyle(el).fontFamily")
    assert "monospace" in font, font
    stray = [url for url in requested if not url.startswith(app.url)]
    assert stray == [], stray
    context.close()

