"""The Alerter on its own: delivery through apprise, redaction, rate limit, best effort."""

from __future__ import annotations

import asyncio

from alert_receiver import Receiver

from numerai_autopilot.alerts import Alerter, redact

KEY = "sk-live-0123456789abcdef"


async def test_alerts_arrive_redacted_and_deduplicated(receiver: Receiver) -> None:
    alerter = Alerter([receiver.url], secrets=[KEY])
    assert alerter.post("one", "alpha failed", (
        f"key {KEY} leaked; GET https://numer.ai/pred/m?token=abc123 ; "
        "Authorization: Token PUBLICID$secretvalue; admin_token=hunter22 "
        "long 7f3a9c0d2e4b6a8f1c3e5d7b9a0c2e4f6a8b0d1c; run 0190a1b2-1234-7abc-8def-0123456789ab"
    ))
    assert not alerter.post("one", "alpha failed", "the same key is sent once")
    await alerter.drain()
    [alert] = receiver.wait(1)
    assert alert["title"] == "alpha failed"
    text = alert["message"]
    for secret in (KEY, "abc123", "secretvalue", "PUBLICID", "hunter22", "7f3a9c0d2e4b"):
        assert secret not in text
    assert "https://numer.ai/pred/m?***" in text
    assert "0190a1b2-1234-7abc-8def-0123456789ab" in text  # ids people need stay readable
    assert alerter.sent == 1


async def test_rate_limit_drops_and_reports(receiver: Receiver) -> None:
    alerter = Alerter([receiver.url], rate_limit=2, rate_window_s=0.5)
    posted = [alerter.post(f"k{i}", f"alert {i}", "body") for i in range(5)]
    assert posted == [True, True, False, False, False]
    await alerter.drain()
    receiver.wait(2)
    await asyncio.sleep(0.6)
    assert alerter.post("later", "alert later", "body")
    await alerter.drain()
    later = receiver.wait(1, match="alert later")[0]
    assert "3 earlier alert(s) dropped by the rate limit" in later["message"]
    assert len(receiver.received) == 3


async def test_an_unreachable_receiver_never_raises() -> None:
    alerter = Alerter(["json://127.0.0.1:9/nothing-listens-here", "not-a-scheme://x"])
    assert alerter.post("k", "title", "body")
    await alerter.drain(timeout=20)
    assert alerter.failed == 1 and alerter.sent == 0


async def test_no_urls_means_no_alerts() -> None:
    alerter = Alerter([])
    assert not alerter.enabled and not alerter.post("k", "t", "b")


def test_redact_keeps_plain_text() -> None:
    message = "model 'alpha': predictor returned 312 fewer rows than the live data (6,720)"
    assert redact(message) == message
