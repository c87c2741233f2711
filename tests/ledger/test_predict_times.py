"""The predict times a new process starts from: each model's latest submitted run's."""

from __future__ import annotations

from ledger_helpers import new_run

from numerai_autopilot.ledger import Ledger, RunState
from numerai_autopilot.runtime import last_predict_times


def _through(ledger: Ledger, model: str, round_number: int, compute_s: float | None,
             final: RunState = RunState.SUBMITTED) -> None:
    run, _ = ledger.record(new_run(model_name=model, model_id=f"model-{model}",
                                   round_number=round_number))
    [claimed] = ledger.claim("worker", limit=1)
    assert claimed.id == run.id
    ledger.advance(run.id, RunState.DOWNLOADING, owner="worker")
    ledger.advance(run.id, RunState.PREDICTING, owner="worker")
    if final is RunState.FAILED:
        ledger.advance(run.id, RunState.FAILED, owner="worker", error="boom")
        return
    detail = {} if compute_s is None else {"compute_s": compute_s, "load_s": 9.0}
    ledger.advance(run.id, RunState.VALIDATING, owner="worker", detail=detail)
    ledger.advance(run.id, RunState.UPLOADING, owner="worker")
    ledger.advance(run.id, RunState.SUBMITTED, owner="worker", submission_id=f"s-{run.id}")


def test_each_models_latest_submitted_predict_time(ledger: Ledger) -> None:
    _through(ledger, "alpha", 510, 40.0)
    _through(ledger, "alpha", 511, 55.5)  # the latest counts
    _through(ledger, "beta", 511, 3.0)
    _through(ledger, "beta", 512, None, final=RunState.FAILED)  # no time: the last one stands
    _through(ledger, "gamma", 512, None)  # submitted without timings (a fallback, say)
    assert last_predict_times(ledger, models=3) == {"alpha": 55.5, "beta": 3.0}
