"""The dashboard in a real headless Chromium: sign in, watch a round live, open a failed run,
re-run it after fixing the model, sign out. Screenshots go to test-artifacts/dashboard/."""

from __future__ import annotations

from pathlib import Path

import pytest
from app_harness import PASSWORD, USER, StartApp, pool

from numerai_autopilot.ledger import RunState

ARTIFACTS = Path(__file__).parents[2] / "test-artifacts" / "dashboard"

FLAKY = '''
from pathlib import Path

FIXED = Path({marker!r})


def predict(live_features):
    if not FIXED.exists():
        raise ValueError("model file is corrupt")
    features = [c for c in live_features.columns if c.startswith("feature_")]
    return live_features[features].astype("float32").mean(axis=1).rank(pct=True).to_frame("prediction")
'''

# Records every label the alpha cell shows, to prove the page changed without a reload.
WATCH = """() => {
  window.__notReloaded = true;
  window.__seen = [];
  const grid = document.getElementById("grid");
  const note = () => {
    const cell = grid.querySelector('td[data-model="alpha"]');
    if (cell) { const s = cell.dataset.status + ":" + cell.innerText.trim().split("\\n")[0];
                if (window.__seen[window.__seen.length - 1] !== s) window.__seen.push(s); }
  };
  note();
  new MutationObserver(note).observe(grid, {childList: true, subtree: true});
}"""



@pytest.mark.browser
@pytest.mark.timeout(240)
def test_sign_in_watch_a_round_rerun_a_failed_run_sign_out(
    start_app: StartApp, browser: object, tmp_path: Path
) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    marker = tmp_path / "beta-fixed"
    (tmp_path / "flaky.py").write_text(FLAKY.format(marker=str(marker)))
    app = start_app({"alpha": pool("slow"), "beta": f"{tmp_path / 'flaky.py'}:predict"})
    app.register_webhooks()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)

    page.goto(app.url + "/")
    expect(page).to_have_url(app.url + "/login?next=/")
    page.fill("input[name=username]", USER)
    page.fill("input[name=password]", "not the password")
    page.click("button[type=submit]")
    expect(page.locator(".error")).to_contain_text("Wrong user name")
    page.screenshot(path=str(ARTIFACTS / "01-wrong-password.png"))
    page.fill("input[name=username]", USER)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(app.url + "/")
    page.evaluate(WATCH)

    number = app.sandbox.open_round()["number"]  # the sandbox POSTs our webhooks, like Numerai
    alpha = page.locator(f'td[data-model="alpha"][data-round="{number}"]')
    beta = page.locator(f'td[data-model="beta"][data-round="{number}"]')
    expect(alpha).to_have_attribute("data-status", "running")
    page.screenshot(path=str(ARTIFACTS / "02-round-running.png"), full_page=True)
    expect(alpha).to_have_attribute("data-status", "submitted", timeout=90_000)
    expect(beta).to_have_attribute("data-status", "failed")
    assert page.evaluate("window.__notReloaded") is True
    seen = page.evaluate("window.__seen")
    assert seen[-1].startswith("submitted") and any(s.startswith("running") for s in seen), seen
    page.screenshot(path=str(ARTIFACTS / "03-round-submitted.png"), full_page=True)

    beta.locator("a").click()
    expect(page.locator("#run-error")).to_contain_text("model file is corrupt")
    expect(page.locator("#run-state")).to_have_text("failed")
    page.screenshot(path=str(ARTIFACTS / "04-failed-run.png"), full_page=True)
    run_url = page.url

    # a POST with the session cookie but without the CSRF token is refused
    refused = context.request.post(run_url + "/rerun")
    assert refused.status == 403
    run_id = run_url.rsplit("/", 1)[1]
    assert app.runtime.ledger.get(run_id).state is RunState.FAILED  # type: ignore[union-attr]

    marker.write_text("fixed")  # the user fixes the model, then re-runs the failed run
    page.click("#rerun")
    expect(page.locator(".flash")).to_contain_text("Queued again.")
    page.evaluate("window.__notReloaded = true")
    expect(page.locator("#run-state")).to_have_text("submitted", timeout=90_000)
    expect(page.locator("#submission-id")).not_to_have_text("—")
    assert page.evaluate("window.__notReloaded") is True
    page.screenshot(path=str(ARTIFACTS / "05-rerun-submitted.png"), full_page=True)

    page.click("text=Sign out")
    expect(page).to_have_url(app.url + "/login")
    expect(page.locator(".flash")).to_contain_text("Signed out.")
    page.goto(app.url + "/")
    expect(page).to_have_url(app.url + "/login?next=/")
    page.screenshot(path=str(ARTIFACTS / "06-signed-out.png"))
    context.close()
