"""What a new process knows of each model from its submitted runs: the latest predict time,
and whether it scaled in its latest run on several threads."""

from __future__ import annotations

from ledger_helpers import new_run

from numerai_autopilot.executor import Expected
from numerai_autopilot.ledger import Ledger, RunState
from numerai_autopilot.runtime import last_predict_times


def _through(ledger: Ledger, model: str, round_number: int, compute_s: float | None,
             final: RunState = RunState.SUBMITTED, cpu_s: float | None = None,
             threads: int = 1, data_wait_s: float | None = None,
             flags: tuple[str, ...] = ()) -> None:
    run, _ = ledger.record(new_run(model_name=model, model_id=f"model-{model}",
                                   round_number=round_number))
    [claimed] = ledger.claim("worker", limit=1)
    assert claimed.id == run.id
    ledger.advance(run.id, RunState.DOWNLOADING, owner="worker")
    ledger.advance(run.id, RunState.PREDICTING, owner="worker")
    if final is RunState.FAILED:
        ledger.advance(run.id, RunState.FAILED, owner="worker", error="boom")
        return
    detail = {} if compute_s is None else {"compute_s": compute_s, "load_s": 9.0,
                                           "threads": threads}
    if cpu_s is not None:
        detail["cpu_s"] = cpu_s
    if data_wait_s is not None:
        detail["data_wait_s"] = data_wait_s
    detail |= dict.fromkeys(flags, True)
    ledger.advance(run.id, RunState.VALIDATING, owner="worker", detail=detail)
    ledger.advance(run.id, RunState.UPLOADING, owner="worker")
    ledger.advance(run.id, RunState.SUBMITTED, owner="worker", submission_id=f"s-{run.id}")


def test_each_models_latest_submitted_predict_time(ledger: Ledger) -> None:
    _through(ledger, "alpha", 510, 40.0)
    _through(ledger, "alpha", 511, 55.5)  # the latest counts
    _through(ledger, "beta", 511, 3.0)
    _through(ledger, "beta", 512, None, final=RunState.FAILED)  # no time: the last one stands
    _through(ledger, "gamma", 512, None)  # submitted without timings (a fallback, say)
    # one-thread times are averaged, the latest weighing half
    assert last_predict_times(ledger, models=3) == {"alpha": Expected(55.5, one_thread_s=47.75),
                                                    "beta": Expected(3.0, one_thread_s=3.0)}


def test_whether_a_model_scales_comes_from_its_runs_oldest_first(ledger: Ledger) -> None:
    _through(ledger, "deep", 510, 6.5, cpu_s=6.6, threads=1)  # beside another model
    _through(ledger, "deep", 511, 1.7, cpu_s=3.3, threads=2)  # both cores kept busy, sooner
    _through(ledger, "deep", 512, 6.4, cpu_s=6.6, threads=1)  # averaged with the first
    _through(ledger, "python", 511, 3.0, cpu_s=3.1, threads=2)  # one core of two
    _through(ledger, "python", 512, 2.0, cpu_s=2.1, threads=1)
    _through(ledger, "even", 511, 4.0, cpu_s=4.0, threads=1)
    _through(ledger, "even", 512, 2.0, cpu_s=3.9, threads=2)  # no sooner than side by side
    known = last_predict_times(ledger, models=3)
    assert known["deep"] == Expected.of_run(
        6.4, 6.6, 1, Expected.of_run(1.7, 3.3, 2, Expected.of_run(6.5, 6.6, 1)))
    assert (known["deep"].seconds, known["deep"].scales) == (6.4, True)
    assert (known["python"].seconds, known["python"].scales) == (2.0, False)
    assert (known["even"].seconds, known["even"].scales) == (2.0, False)


def test_a_run_whose_cores_another_model_loaded_on_does_not_judge_its_scaling(
        ledger: Ledger) -> None:
    _through(ledger, "deep", 510, 6.5, cpu_s=6.6, threads=1)  # beside another model
    _through(ledger, "deep", 511, 2.5, cpu_s=4.8, threads=2)  # alone on both cores: scales
    # the next model loaded on its cores meanwhile: twice as long on two threads
    _through(ledger, "deep", 512, 4.0, cpu_s=7.4, threads=2, flags=("cores_shared",))
    known = last_predict_times(ledger, models=1)["deep"]
    assert (known.seconds, known.wide_thread_s, known.scales) == (4.0, 5.0, True)
    assert known.busy == (4.8 / 5.0 + 7.4 / 8.0) / 2  # what it kept busy still counts
    # judged on that run, it would not have scaled (6.5 < 1.1 x the average of 5.0 and 8.0)
    assert not Expected.of_run(4.0, 7.4, 2, Expected.of_run(
        2.5, 4.8, 2, Expected.of_run(6.5, 6.6, 1))).scales


def test_the_run_page_says_on_how_many_threads_a_model_predicted_and_when_it_loaded(ledger: Ledger) -> None:
    from datetime import UTC, datetime

    from numerai_autopilot.web.dashboard.views import predict_time

    _through(ledger, "wide", 511, 3.5, cpu_s=6.9, threads=2)
    _through(ledger, "narrow", 511, 3.5, cpu_s=3.5, threads=1)
    _through(ledger, "early", 511, 3.5, cpu_s=3.5, threads=1, data_wait_s=0.5)
    _through(ledger, "ahead", 511, 3.5, cpu_s=3.5, threads=1, flags=("loaded_ahead",))
    said = {run.model_name: predict_time(run, ledger.stages(run.id), datetime.now(UTC))
            for run in ledger.runs(limit=10)}
    assert "(predictor 3.5 s on 2 threads, loading it 9.0 s" in said["wide"], said
    assert "(predictor 3.5 s, loading it 9.0 s" in said["narrow"], said
    # loaded while the round's data downloaded: not this stage's time
    assert "(predictor 3.5 s, loading it during the download 9.0 s" in said["early"], said
    # loaded while the model before it predicted on every core
    assert ("(predictor 3.5 s, loading it while the model before it predicted 9.0 s"
            in said["ahead"]), said
