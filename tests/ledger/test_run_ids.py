"""Run ids: UUIDv7 text, ordered by the time they were made."""

from __future__ import annotations

import time
import uuid

from numerai_autopilot.ledger.types import new_run_ids


def new_run_id() -> str:
    return new_run_ids(1)[0]


def test_a_run_id_is_a_version_7_uuid_in_canonical_form() -> None:
    for _ in range(1000):
        run_id = new_run_id()
        parsed = uuid.UUID(run_id)
        assert str(parsed) == run_id
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122


def test_run_ids_made_a_millisecond_apart_sort_in_that_order() -> None:
    earlier = new_run_id()
    time.sleep(0.002)
    assert new_run_id() > earlier


def test_the_id_carries_the_unix_milliseconds_it_was_made_at() -> None:
    before = time.time_ns() // 1_000_000
    run_id = new_run_id()
    after = time.time_ns() // 1_000_000
    assert before <= uuid.UUID(run_id).int >> 80 <= after


def test_ids_made_together_are_distinct_version_7_uuids_of_that_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    ids = new_run_ids(5000)
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == 5000
    for run_id in ids:
        parsed = uuid.UUID(run_id)
        assert str(parsed) == run_id and parsed.version == 7 and parsed.variant == uuid.RFC_4122
        assert before <= parsed.int >> 80 <= after
    assert new_run_ids(0) == []


def test_the_random_bits_of_ids_made_together_vary_in_every_place() -> None:
    """Each of the 74 random bits takes both values over 200 ids (a slicing mistake that
    reused or dropped digits of the random pool would leave some bit fixed)."""
    values = [uuid.UUID(run_id).int for run_id in new_run_ids(200)]
    rand_a = [(v >> 64) & 0xFFF for v in values]
    rand_b = [v & ((1 << 62) - 1) for v in values]
    for bit in range(12):
        assert {(a >> bit) & 1 for a in rand_a} == {0, 1}
    for bit in range(62):
        assert {(b >> bit) & 1 for b in rand_b} == {0, 1}
