"""`Change.predictions` / `Ledger.predictions`: a run's validated CSV, kept with a state change
for a held run and blends."""

from __future__ import annotations

from datetime import timedelta

from ledger_helpers import new_run
from sqlalchemy import update

from numerai_autopilot.errors import LedgerError
from numerai_autopilot.ledger import PREDICTIONS_MEMORY, Change, Ledger, Run, RunState, utcnow
from numerai_autopilot.ledger.schema import run_predictions

CSV = b"id,prediction\n" + b"".join(b"n%05d,0.%05d\n" % (i, i) for i in range(5000))


def keep(ledger: Ledger, trigger: str, csv: bytes, rows: int) -> Run:
    """A run (of a model of its own) taken to `uploading` by a change that carries `csv`,
    as the pipeline does."""
    run, _ = ledger.record(new_run(trigger_id=trigger, model_name=trigger,
                                   model_id=f"model-{trigger}"))
    ledger.claim_run(run.id, "me")
    for state in (RunState.DOWNLOADING, RunState.PREDICTING):
        ledger.advance(run.id, state, owner="me")
    (after,) = ledger.advance_many([Change(run.id, RunState.UPLOADING, owner="me",
                                           via=RunState.VALIDATING, predictions=(csv, rows))])
    assert isinstance(after, Run)
    return after


def test_a_runs_predictions_come_back_byte_for_byte(ledger: Ledger) -> None:
    run, _ = ledger.record(new_run(trigger_id="t-0"))
    assert ledger.predictions(run.id) is None
    run = keep(ledger, "t-1", CSV, 5000)
    assert ledger.predictions(run.id) == CSV
    # a later change carrying predictions (a retry's) replaces them
    (again,) = ledger.advance_many([Change(run.id, RunState.UPLOADING, owner="me", predictions=(
        b"id,prediction\nn1,0.5\n", 1))])
    assert isinstance(again, Run)
    assert ledger.predictions(run.id) == b"id,prediction\nn1,0.5\n"


def test_old_predictions_are_forgotten_when_new_ones_are_kept(ledger: Ledger) -> None:
    old = keep(ledger, "t-old", CSV, 5000)
    recent = keep(ledger, "t-recent", CSV, 5000)
    with ledger.engine.begin() as conn:
        conn.execute(update(run_predictions).where(run_predictions.c.run_id == old.id)
                     .values(kept_at=utcnow() - PREDICTIONS_MEMORY - timedelta(minutes=1)))
    new = keep(ledger, "t-new", CSV, 5000)
    assert ledger.predictions(old.id) is None
    assert ledger.predictions(recent.id) == CSV == ledger.predictions(new.id)


def test_a_state_change_keeps_the_predictions_it_carries(ledger: Ledger) -> None:
    run, _ = ledger.record(new_run(trigger_id="t-1"))
    (claimed,) = ledger.claim("me", lease_s=60)
    for state in (RunState.DOWNLOADING, RunState.PREDICTING):
        ledger.advance(claimed.id, state, owner="me")
    (after,) = ledger.advance_many([Change(run.id, RunState.UPLOADING, owner="me",
                                           via=RunState.VALIDATING, predictions=(CSV, 5000))])
    assert not isinstance(after, BaseException) and after.state is RunState.UPLOADING
    assert ledger.predictions(run.id) == CSV
    # a refused change keeps nothing
    other, _ = ledger.record(new_run(trigger_id="t-2"))
    (refused,) = ledger.advance_many([Change(other.id, RunState.UPLOADING, owner="me",
                                             predictions=(CSV, 5000))])
    assert isinstance(refused, LedgerError) and ledger.predictions(other.id) is None
