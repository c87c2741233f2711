"""`claim_alert`: an alert key is sent once, whichever process or restart asks first."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import insert, select

from numerai_autopilot.ledger import ALERT_MEMORY, Ledger, utcnow
from numerai_autopilot.ledger.schema import alerts_sent


def test_a_key_is_claimed_once(ledger: Ledger) -> None:
    assert ledger.claim_alert("failed:run-1:1")
    assert not ledger.claim_alert("failed:run-1:1")
    assert ledger.claim_alert("failed:run-1:2")  # another attempt is another alert


def test_a_restarted_process_finds_the_keys_already_sent(ledger_url: str) -> None:
    with Ledger.from_url(ledger_url) as first:
        first.migrate()
        assert first.claim_alert("closing:alpha:8:1101")
    with Ledger.from_url(ledger_url) as after_restart:
        assert not after_restart.claim_alert("closing:alpha:8:1101")
        assert after_restart.claim_alert("closing:alpha:8:1102")


def test_instances_racing_for_one_key_send_it_once(ledger_url: str) -> None:
    instances = [Ledger.from_url(ledger_url) for _ in range(2)]
    instances[0].migrate()
    start = threading.Barrier(8)
    won: list[bool] = []

    def claim(ledger: Ledger) -> None:
        start.wait()
        won.append(ledger.claim_alert("summary:8:1101"))

    threads = [threading.Thread(target=claim, args=(instances[i % 2],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for instance in instances:
        instance.close()
    assert sorted(won) == [False] * 7 + [True]


def test_a_key_too_long_for_the_column_is_stored_as_its_hash(ledger: Ledger) -> None:
    long_key = "closing:" + "m" * 400 + ":8:1101"
    assert ledger.claim_alert(long_key)
    assert not ledger.claim_alert(long_key)
    assert ledger.claim_alert(long_key[:-1] + "2")


def test_keys_older_than_the_memory_are_forgotten(ledger: Ledger) -> None:
    old = utcnow() - ALERT_MEMORY - timedelta(days=1)
    recent = utcnow() - ALERT_MEMORY + timedelta(days=1)
    with ledger.engine.begin() as conn:
        conn.execute(insert(alerts_sent), [{"key": "summary:8:900", "sent_at": old},
                                           {"key": "summary:8:990", "sent_at": recent}])
    assert ledger.claim_alert("summary:8:1101")
    with ledger.engine.connect() as conn:
        kept = set(conn.execute(select(alerts_sent.c.key)).scalars())
    assert kept == {"summary:8:990", "summary:8:1101"}
