"""A suspect run held for approval, in a real headless Chromium: the round grid marks it, its
page shows its figures against the band with Submit anyway / Submit fallback, a click
submits what was kept (without predicting again) or the fallback, and the model page charts
each figure over the rounds. Screenshots go to test-artifacts/dashboard/."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from app_harness import PASSWORD, USER, StartApp
from health_models import play_round, write_linear_pickle

from numerai_autopilot.ledger import RunState
from numerai_autopilot.sandbox.settings import SandboxSettings

ARTIFACTS = Path(__file__).parents[2] / "test-artifacts" / "dashboard"
FALLBACK = "benchmark:v53_lgbm_cyrusd20"


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_held_suspect_run_is_submitted_only_once_approved_in_the_page(
    start_app: StartApp, browser: object, sandbox_settings: SandboxSettings, tmp_path: Path
) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    models = {}
    for name in ("alpha", "beta"):
        write_linear_pickle(sandbox_settings.data_dir, tmp_path / f"{name}.pkl")
        models[name] = {"predictor": str(tmp_path / f"{name}.pkl"), "on_suspect": "hold",
                        "fallback": FALLBACK}
    app = start_app(models)
    app.register_webhooks()
    for _ in range(3):
        assert all(r.state is RunState.SUBMITTED for r in play_round(app.sandbox, app, 2).values())
    for name in ("alpha", "beta"):
        write_linear_pickle(sandbox_settings.data_dir, tmp_path / f"{name}.pkl", shuffled=True)
    held = play_round(app.sandbox, app, 2)
    assert all(r.state is RunState.HELD for r in held.values()), held
    number = held["alpha"].round_number
    assert not [s for s in app.sandbox.submissions() if s["round_number"] == number]
    # approving uploads what was kept: were alpha's predictor run again, it would fail now
    (tmp_path / "alpha.pkl").write_bytes(b"not a pickle any more")

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(app.url + "/login")
    page.fill("input[name=username]", USER)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    cell = page.locator(f'td[data-model="alpha"][data-round="{number}"]')
    expect(cell).to_have_attribute("data-status", "held")
    expect(cell).to_have_attribute("data-suspect", "1")
    page.screenshot(path=str(ARTIFACTS / "health-01-grid-held.png"), full_page=True)

    cell.locator("a").click()
    expect(page.locator("#run-state")).to_have_text("held")
    expect(page.locator('table.health tr[data-figure="corr_example"]')).to_have_attribute(
        "data-out", "1")
    expect(page.locator("#submit-anyway")).to_be_visible()
    expect(page.locator("#submit-fallback")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "health-02-held-run.png"), full_page=True)
    refused = context.request.post(page.url + "/approve", form={"choice": "primary"})
    assert refused.status == 403  # no CSRF token
    assert app.runtime.ledger.get(held["alpha"].id).state is RunState.HELD  # type: ignore[union-attr]

    page.click("#submit-anyway")
    expect(page.locator(".flash")).to_contain_text("Approved: submitting its kept predictions")
    expect(page.locator("#run-state")).to_have_text("submitted", timeout=90_000)
    page.screenshot(path=str(ARTIFACTS / "health-03-approved.png"), full_page=True)

    page.goto(f"{app.url}/runs/{held['beta'].id}")
    page.click("#submit-fallback")
    expect(page.locator("#run-state")).to_have_text("submitted", timeout=90_000)

    alpha = app.runtime.ledger.get(held["alpha"].id)
    beta = app.runtime.ledger.get(held["beta"].id)
    assert alpha is not None and beta is not None
    assert not alpha.detail.get("fallback") and beta.detail["fallback"] == FALLBACK
    kept = app.runtime.ledger.predictions(alpha.id)
    assert kept is not None
    subs = {s["model_name"]: s for s in app.sandbox.submissions() if s["round_number"] == number}
    assert sorted(subs) == ["alpha", "beta"]
    assert subs["alpha"]["sha256"] == hashlib.sha256(kept).hexdigest()  # what was held
    said = [line.message for line in app.runtime.ledger.logs(alpha.id)]
    assert f"approved by {USER}: submitting its kept predictions" in said

    page.goto(app.url + "/models/alpha")
    chart = page.locator('figure.chart[data-figure="corr_example"]')
    expect(chart.locator("circle")).to_have_count(4)
    expect(chart.locator("circle.out")).to_have_count(1)
    page.screenshot(path=str(ARTIFACTS / "health-04-model-charts.png"), full_page=True)
    context.close()
