"""`/metrics` after a real round, parsed with prometheus-client's own parser."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from app_harness import ADMIN_TOKEN, pool, running_app
from prometheus_client.parser import text_string_to_metric_families

from numerai_autopilot.sandbox.testing import RunningSandbox

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    answer = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def test_metrics_after_a_round(tmp_path: Path, sandbox: RunningSandbox) -> None:
    with running_app(tmp_path, sandbox, {"alpha": pool("good"), "beta": pool("raises")}) as app:
        assert httpx.get(f"{app.url}/metrics").status_code == 401
        before = scrape(app.url)
        assert before[("autopilot_runs", (("state", "submitted"),))] == 0
        assert before[("autopilot_download_bytes_total", ())] == 0

        app.register_webhooks()
        app.sandbox.open_round()
        runs = app.wait_final(2)
        httpx.post(app.hook_url("alpha"), content=b"not json")  # a 422, timed too
        deadline = time.monotonic() + 10
        while True:  # stage metrics are recorded just after the state commits
            samples = scrape(app.url)
            key = ("autopilot_stage_duration_seconds_count",
                   (("outcome", "failed"), ("stage", "predicting")))
            if samples.get(key) == 1 or time.monotonic() > deadline:
                break
            time.sleep(0.05)

    assert samples[("autopilot_runs", (("state", "submitted"),))] == 1
    assert samples[("autopilot_runs", (("state", "failed"),))] == 1
    assert samples[("autopilot_runs", (("state", "queued"),))] == 0
    assert samples.get(key) == 1
    stage = "autopilot_stage_duration_seconds_count"
    assert samples[(stage, (("outcome", "submitted"), ("stage", "uploading")))] == 1
    assert samples[(stage, (("outcome", "predicting"), ("stage", "downloading")))] == 2
    assert samples[("autopilot_stage_duration_seconds_sum",
                    (("outcome", "predicting"), ("stage", "downloading")))] > 0
    assert samples[("autopilot_webhook_answer_seconds_count", (("status", "200"),))] == 2
    assert samples[("autopilot_webhook_answer_seconds_count", (("status", "422"),))] == 1
    assert samples[("autopilot_download_bytes_total", ())] > 10_000
    assert samples[("autopilot_downloads_total", ())] >= 1
    submitted = next(r for r in runs if r.model_name == "alpha")
    last = samples[("autopilot_last_submission_timestamp_seconds", (("model", "alpha"),))]
    assert last == submitted.updated_at.timestamp()
    assert ("autopilot_last_submission_timestamp_seconds", (("model", "beta"),)) not in samples


def test_two_apps_in_one_process_keep_their_own_metrics(
    tmp_path: Path, sandbox: RunningSandbox
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with running_app(tmp_path / "a", sandbox, {"alpha": pool("good")}) as first, \
            running_app(tmp_path / "b", sandbox, {"alpha": pool("good")}) as second:
        httpx.post(first.hook_url("alpha"), content=b"not json")  # a 422: not a JSON object
        one, two = scrape(first.url), scrape(second.url)
    assert one[("autopilot_webhook_answer_seconds_count", (("status", "422"),))] == 1
    assert ("autopilot_webhook_answer_seconds_count", (("status", "422"),)) not in two
