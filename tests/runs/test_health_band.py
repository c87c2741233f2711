"""A run's figures against its model's band: the band needs `min_rounds` rounds, each kind
of figure has its margin, and only the model's own submitted rounds make the band."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from numerai_autopilot.config import HealthSettings
from numerai_autopilot.ledger import Run, RunState
from numerai_autopilot.runs.health import history_of, judge, margin

GOOD = {"rows": 6700.0, "mean": 0.5, "std": 0.29, "corr_example": 0.70, "exposure": 0.10}


def past(n: int, **changes: float) -> list[dict[str, float]]:
    return [{**GOOD, "corr_example": 0.66 + 0.02 * (i % 3), **changes} for i in range(n)]


def test_no_band_and_no_verdict_before_three_rounds() -> None:
    broken = {**GOOD, "corr_example": 0.02}
    for rounds in (0, 1, 2):
        verdict = judge(broken, past(rounds), HealthSettings())
        assert not verdict.suspect and verdict.bands == {} and verdict.rounds == rounds
    verdict = judge(broken, past(3), HealthSettings())
    assert verdict.suspect and verdict.bands["corr_example"] == pytest.approx((0.66, 0.70))
    (reason,) = verdict.reasons
    assert reason.startswith("corr_example 0.020 is below its band 0.660..0.700 of the last 3")


def test_margins_by_kind() -> None:
    settings = HealthSettings(corr_margin=0.05, stat_margin=0.02, count_margin=0.1)
    assert margin("corr_v53_lgbm", settings, 0.6, 0.7) == pytest.approx((0.55, 0.75))
    assert margin("exposure", settings, 0.1, 0.2) == pytest.approx((0.05, 0.25))
    assert margin("std", settings, 0.28, 0.29) == pytest.approx((0.26, 0.31))
    assert margin("rows", settings, 6000, 7000) == pytest.approx((5400, 7700))
    history = past(5)
    within = {**GOOD, "corr_example": 0.66 - 0.049, "std": 0.29 + 0.019, "rows": 7300.0}
    assert not judge(within, history, settings).suspect
    beyond = {**GOOD, "std": 0.29 + 0.021, "rows": 7400.0}
    assert [r.split()[0] for r in judge(beyond, history, settings).reasons] == ["rows", "std"]


def test_the_band_is_the_last_n_rounds_only() -> None:
    history = past(3, exposure=0.1) + past(20, exposure=0.5)  # newest first
    settings = HealthSettings(rounds=3)
    assert judge({"exposure": 0.45}, history, settings).suspect  # old rounds do not count
    assert judge({"exposure": 0.45}, history, HealthSettings()).bands["exposure"] == (0.1, 0.5)


def test_min_rounds_above_rounds_is_refused() -> None:
    with pytest.raises(ValueError, match="min_rounds"):
        HealthSettings(rounds=2, min_rounds=3)


def _run(number: int, state: RunState = RunState.SUBMITTED, **detail: object) -> Run:
    at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=number)
    return Run(id=f"run-{number}-{state.value}-{len(detail)}", model_name="alpha",
               model_id="m", tournament=8, round_number=number, trigger_id=f"t{number}",
               data_version="v5.3", is_test=False, source="webhook", state=state, attempts=1,
               error=None, submission_id="s", created_at=at, updated_at=at, owner=None,
               lease_until=None, close_time=None, detail=detail)


def test_history_is_the_models_own_submitted_rounds_newest_first() -> None:
    health = {"figures": {"mean": 0.5}}
    runs = [
        _run(1, health={"figures": {"mean": 0.1}}),
        _run(2, health={"figures": {"mean": 0.2}}),
        _run(3, health={"figures": {"mean": 0.3}}, fallback="benchmark:x"),  # not its own
        _run(4, RunState.FAILED, health=health),  # not submitted
        _run(5, RunState.HELD, health=health),
        _run(6),  # no figures (before health was kept)
        _run(7, health={"figures": {"mean": 0.7}}),
    ]
    assert history_of(runs) == [{"mean": 0.7}, {"mean": 0.2}, {"mean": 0.1}]
    assert history_of(runs, exclude=runs[-1].id) == [{"mean": 0.2}, {"mean": 0.1}]
