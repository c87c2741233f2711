from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from ledger_helpers import new_run, run_workers

from numerai_autopilot.errors import LedgerError
from numerai_autopilot.ledger import Ledger, Run, RunState


def _submit(ledger: Ledger, run: Run, submission_id: str = "sub-1") -> Run:
    [claimed] = ledger.claim("worker", limit=1)
    assert claimed.id == run.id
    for state in (
        RunState.DOWNLOADING,
        RunState.PREDICTING,
        RunState.VALIDATING,
        RunState.UPLOADING,
    ):
        ledger.advance(run.id, state, owner="worker")
    return ledger.advance(run.id, RunState.SUBMITTED, owner="worker", submission_id=submission_id)


def test_record_is_committed_and_readable(ledger: Ledger) -> None:
    close = datetime(2026, 1, 2, 14, 0, tzinfo=UTC)
    run, created = ledger.record(new_run(trigger_id="t-1", close_time=close))
    assert created and run.state is RunState.QUEUED and run.attempts == 0
    assert run.created_at.tzinfo is not None and run.detail == {}
    assert ledger.get(run.id) == run
    assert ledger.find("model-alpha", "t-1") == run
    assert run.close_time == close
    other_zone = datetime(2026, 1, 2, 16, 0, tzinfo=UTC).astimezone(
        datetime.now().astimezone().tzinfo
    )
    late, _ = ledger.record(new_run(close_time=other_zone))
    assert ledger.get(late.id).close_time == datetime(2026, 1, 2, 16, 0, tzinfo=UTC)  # type: ignore[union-attr]


def test_same_trigger_gives_the_same_run(ledger: Ledger) -> None:
    first, created = ledger.record(new_run(trigger_id="t-1"))
    again, created_again = ledger.record(new_run(trigger_id="t-1", source="manual"))
    assert created and not created_again
    assert again == first
    # the same trigger id for another model is a different run
    other, created_other = ledger.record(new_run(trigger_id="t-1", model_id="model-beta"))
    assert created_other and other.id != first.id
    assert len(ledger.runs()) == 2


def test_round_already_submitted_is_skipped(ledger: Ledger) -> None:
    first, _ = ledger.record(new_run())
    _submit(ledger, first)
    second, created = ledger.record(new_run())
    assert created and second.state is RunState.SKIPPED
    assert second.error == (
        f"round 512 already submitted by run {first.id}; set resubmit = true to submit again"
    )
    assert ledger.claim("worker") == []  # skipped runs are never worked on
    assert ledger.submitted_run("model-alpha", 512) == ledger.get(first.id)
    assert ledger.submitted_run("model-alpha", 513) is None


def test_second_trigger_while_the_round_is_running_is_skipped(ledger: Ledger) -> None:
    first, _ = ledger.record(new_run(trigger_id="hook-1"))
    ledger.claim("worker")
    ledger.advance(first.id, RunState.DOWNLOADING, owner="worker")
    second, created = ledger.record(new_run(trigger_id="hook-2"))
    assert created and second.state is RunState.SKIPPED
    assert second.error == (
        f"round 512 is already being run by run {first.id} (downloading); "
        "set resubmit = true to run it again"
    )
    ledger.advance(first.id, RunState.FAILED, owner="worker", error="download cut")
    third, _ = ledger.record(new_run(trigger_id="hook-3"))
    assert third.state is RunState.QUEUED  # a failed run does not block the round


def test_resubmit_and_test_webhooks_are_not_skipped(ledger: Ledger) -> None:
    first, _ = ledger.record(new_run())
    _submit(ledger, first)
    again, _ = ledger.record(new_run(resubmit=True))
    assert again.state is RunState.QUEUED and again.resubmit
    test_run, _ = ledger.record(new_run(is_test=True))
    assert test_run.state is RunState.QUEUED
    next_round, _ = ledger.record(new_run(round_number=513))
    assert next_round.state is RunState.QUEUED
    no_round, _ = ledger.record(new_run(round_number=None, is_test=True))
    assert no_round.state is RunState.QUEUED and no_round.round_number is None


def test_watcher_does_not_duplicate_a_webhook_run(ledger: Ledger) -> None:
    webhook, _ = ledger.record(new_run(trigger_id="hook-1"))
    found, created = ledger.record_if_absent_for_round(
        new_run(trigger_id="watcher-512", source="watcher")
    )
    assert not created and found == webhook
    assert ledger.find("model-alpha", "watcher-512") is None


def test_watcher_does_not_duplicate_a_webhook_run_that_will_learn_its_round(ledger: Ledger) -> None:
    """A webhook whose round could not be read runs the current round: until it learns
    which (on entering downloading), the watcher takes it for the round's run."""
    learning, _ = ledger.record(new_run(round_number=None, webhook_body='{"roundNumber": -1}'))
    assert learning.webhook_body == '{"roundNumber": -1}'
    found, created = ledger.record_if_absent_for_round(new_run(source="watcher"))
    assert not created and found == learning
    ledger.claim("worker")
    learnt = ledger.advance(learning.id, RunState.DOWNLOADING, owner="worker", round_number=512)
    assert learnt.round_number == 512 and ledger.get(learning.id) == learnt
    found, created = ledger.record_if_absent_for_round(new_run(source="watcher"))
    assert not created and found == learnt
    again = ledger.advance(learning.id, RunState.PREDICTING, owner="worker", round_number=513)
    assert again.round_number == 512  # a run's round, once known, never changes
    # a test trigger, or a run that failed before learning its round, takes no round
    ledger.record(new_run(model_id="model-beta", round_number=None, is_test=True))
    failed, _ = ledger.record(new_run(model_id="model-beta", round_number=None))
    ledger.advance(failed.id, RunState.FAILED, error="Numerai down")
    _watched, created = ledger.record_if_absent_for_round(new_run(model_id="model-beta",
                                                                  source="watcher"))
    assert created


def test_watcher_records_when_round_missing_or_failed(ledger: Ledger) -> None:
    run, created = ledger.record_if_absent_for_round(new_run(source="watcher"))
    assert created and run.source == "watcher"
    ledger.advance(run.id, RunState.FAILED, error="predictor raised ValueError")
    retry, created = ledger.record_if_absent_for_round(new_run(source="watcher"))
    assert created and retry.id != run.id
    _other_model, created = ledger.record_if_absent_for_round(new_run(model_id="model-beta"))
    assert created
    with pytest.raises(LedgerError, match="needs a round number"):
        ledger.record_if_absent_for_round(new_run(round_number=None))


def test_watcher_and_webhooks_race_to_one_run(ledger: Ledger) -> None:
    barrier = threading.Barrier(8)
    results: list[tuple[Run, bool]] = []

    def racer(i: int) -> None:
        barrier.wait()
        if i % 2:
            results.append(
                ledger.record_if_absent_for_round(
                    new_run(trigger_id=f"watcher-{i}", source="watcher")
                )
            )
        else:
            results.append(ledger.record(new_run(trigger_id="hook-1")))

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # a webhook arriving after the watcher's run is recorded, but skipped: one live run
    live = [r for r in ledger.runs(round_number=512) if r.state is not RunState.SKIPPED]
    assert len(live) == 1
    assert sum(created for run, created in results if run.source == "watcher") <= 1


def test_invalid_new_runs_are_refused(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="source 'cron' is not one of"):
        ledger.record(new_run(source="cron"))
    with pytest.raises(LedgerError, match="trigger_id is empty"):
        ledger.record(new_run(trigger_id=""))
    with pytest.raises(LedgerError, match="has no timezone"):
        ledger.record(new_run(close_time=datetime(2026, 1, 1) + timedelta(hours=1)))
    assert ledger.runs() == []


def test_concurrent_duplicates_from_threads_give_one_row_each(ledger: Ledger) -> None:
    barrier = threading.Barrier(8)
    results: list[tuple[str, str, bool]] = []

    def recorder() -> None:
        barrier.wait()
        for i in range(15):
            run, created = ledger.record(new_run(trigger_id=f"t-{i}"))
            results.append((run.trigger_id, run.id, created))

    threads = [threading.Thread(target=recorder) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 120
    assert len(ledger.runs(limit=1000)) == 15
    created = Counter(trigger for trigger, _, was_created in results if was_created)
    assert created == {f"t-{i}": 1 for i in range(15)}
    ids_by_trigger = {
        trigger: {rid for t, rid, _ in results if t == trigger} for trigger in created
    }
    assert all(len(ids) == 1 for ids in ids_by_trigger.values())


@pytest.mark.parametrize("round_number", ["512", "none"])
def test_concurrent_duplicates_from_processes_give_one_row_each(
    ledger: Ledger, ledger_url: str, round_number: str
) -> None:
    # with a round, recorders serialise on the round; without one (test webhooks) the
    # unique constraint decides and the loser falls back to the existing run
    outputs = run_workers(ledger_url, "record", 4, "25", round_number)
    results = [tuple(item) for out in outputs for item in json.loads(out)]
    assert len(results) == 100
    assert len(ledger.runs(limit=1000)) == 25
    assert sum(1 for _, created in results if created) == 25
    assert len({run_id for run_id, _ in results}) == 25


def test_one_batch_applies_every_rule_in_order(ledger: Ledger) -> None:
    from numerai_autopilot.ledger._record import Recording

    ledger.record(new_run(trigger_id="old", model_id="model-beta"))
    batch = [
        Recording(new_run(trigger_id="a")),
        Recording(new_run(trigger_id="a")),  # duplicate in batch
        Recording(new_run(trigger_id="b")),  # same round, running
        Recording(new_run(trigger_id="w", source="watcher"), only_if_round_absent=True),
        Recording(new_run(trigger_id="old", model_id="model-beta")),
        Recording(new_run(trigger_id="c", resubmit=True)),
    ]
    results = ledger._write_recordings(batch)
    (a, a_new), (a2, a2_new), (b, b_new), (w, w_new), (old, old_new), (c, c_new) = [
        r for r in results if not isinstance(r, LedgerError)
    ]
    assert a_new and not a2_new and a2 == a and a.state is RunState.QUEUED
    assert b_new and b.state is RunState.SKIPPED and f"being run by run {a.id}" in (b.error or "")
    assert not w_new and w == a
    assert not old_new and old.trigger_id == "old"
    assert c_new and c.state is RunState.QUEUED
    assert ledger.get(a.id) == a and ledger.get(b.id) == b and ledger.get(c.id) == c
