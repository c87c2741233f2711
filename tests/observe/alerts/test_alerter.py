"""The Alerter on its own: delivery through apprise, redaction, rate limit, best effort."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alert_receiver import Receiver

from numerai_autopilot.ledger import Ledger
from numerai_autopilot.observe.alerts import Alerter, redact

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


async def test_an_alert_sent_before_a_restart_is_not_sent_again(
        receiver: Receiver, tmp_path: Path) -> None:
    with Ledger.from_url(f"sqlite:///{tmp_path / 'ledger.db'}") as ledger:
        ledger.migrate()
        before = Alerter([receiver.url], claim=ledger.claim_alert)
        assert before.post("closing:alpha:8:1101", "alpha: not submitted", "first process")
        await before.drain()
        receiver.wait(1)
        after = Alerter([receiver.url], claim=ledger.claim_alert)  # the restarted process
        assert after.post("closing:alpha:8:1101", "alpha: not submitted", "after the restart")
        assert after.post("closing:alpha:8:1102", "alpha: next round", "a new alert")
        await after.drain()
        receiver.wait(1, match="alpha: next round")
        assert [a["message"] for a in receiver.received] == ["first process", "a new alert"]
        assert (after.sent, after.already_sent) == (1, 1)


async def test_an_alert_goes_out_when_the_ledger_cannot_say(
        receiver: Receiver, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with Ledger.from_url(f"sqlite:///{tmp_path / 'ledger.db'}") as unmigrated:  # no tables
        alerter = Alerter([receiver.url], claim=unmigrated.claim_alert)
        assert alerter.post("failed:run-1:1", "alpha: run failed", "sent all the same")
        await alerter.drain()
        [alert] = receiver.wait(1)
        assert alert["message"] == "sent all the same" and alerter.sent == 1
        assert "could not check whether alert 'failed:run-1:1' was already sent" in caplog.text


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


def test_redact_keeps_a_run_pages_link_but_not_a_key_with_slashes() -> None:
    link = "https://autopilot.example.org/runs/0190a1b2-1234-7abc-8def-0123456789ab"
    assert redact(f"open {link} to approve it") == f"open {link} to approve it"
    assert redact("key-ish abcDEF123456/xyzXYZ7890123456789012345678 end") == "key-ish *** end"
