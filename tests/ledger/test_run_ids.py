"""Run ids: UUIDv7 text, ordered by the time they were made."""

from __future__ import annotations

import time
import uuid

from numerai_autopilot.ledger.types import new_run_id


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
