"""`cli.tables.short_ids`: each run id's shortest unique start, which `logs` accepts."""

from __future__ import annotations

import uuid

from numerai_autopilot.cli.tables import MIN_ID, short_ids


def test_ids_sharing_more_than_eight_characters_get_longer_starts() -> None:
    ids = ["0193a7f2-11aa-4000-8000-000000000001", "0193a7f2-11ab-4000-8000-000000000002",
           "0193a7f2-9c00-4000-8000-000000000003", "7e000000-0000-4000-8000-000000000004"]
    shortest = short_ids(ids)
    assert shortest == {ids[0]: "0193a7f2-11aa", ids[1]: "0193a7f2-11ab",
                        ids[2]: "0193a7f2-9", ids[3]: "7e000000"}


def test_every_start_is_whole_and_names_exactly_one_id() -> None:
    ids = [str(uuid.uuid4()) for _ in range(500)]
    ids += [ids[0][:9] + "0" * 27, ids[0][:9] + "1" * 27]  # two that share 9 characters
    shortest = short_ids(ids)
    assert len(shortest) == len(ids)
    for run_id, start in shortest.items():
        assert len(start) >= MIN_ID and run_id.startswith(start)
        assert [other for other in ids if other.startswith(start)] == [run_id]
