"""Prediction health over real rounds (our server, Dask workers, the sandbox): a model whose
pickle is swapped for one applying its weights to shuffled features is suspect in the next
round; `on_suspect = "fallback"` submits the fallback, "warn" (the default) submits it and
says so. The band needs three submitted rounds first."""

from __future__ import annotations

from pathlib import Path

import pytest
from health_models import play_round, write_linear_pickle
from server_harness import StartServer

from numerai_autopilot.ledger import RunState
from numerai_autopilot.sandbox.settings import SandboxSettings
from numerai_autopilot.sandbox.testing import RunningSandbox
from numerai_autopilot.validation import health as health_figures

FALLBACK = "benchmark:v53_lgbm_cyrusd20"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_swapped_pickle_is_suspect_and_fallback_submits_the_fallback(
    sandbox: RunningSandbox, sandbox_settings: SandboxSettings, start_server: StartServer,
    tmp_path: Path,
) -> None:
    for name in ("alpha", "beta"):
        write_linear_pickle(sandbox_settings.data_dir, tmp_path / f"{name}.pkl")
    server = start_server({
        "alpha": {"predictor": str(tmp_path / "alpha.pkl"), "on_suspect": "fallback",
                  "fallback": FALLBACK},
        "beta": {"predictor": str(tmp_path / "beta.pkl")},  # on_suspect = "warn"
    })
    for name in ("alpha", "beta"):
        sandbox.set_webhook(name, server.hook_url(name))
    built = list(health_figures._frames)  # round arrays this process (the server) holds
    for played in range(3):
        runs = play_round(sandbox, server, 2)
        for run in runs.values():
            assert run.state is RunState.SUBMITTED and not run.detail.get("fallback"), run
            health = run.detail["health"]
            assert health["rounds"] == played and not health["suspect"]
            assert health["figures"]["corr_example"] > 0.2  # a fitted model
            assert health["band"] == {}  # no band before three submitted rounds
    # the figures came from the workers, beside validation: the server built no arrays
    assert list(health_figures._frames) == built

    for name in ("alpha", "beta"):
        write_linear_pickle(sandbox_settings.data_dir, tmp_path / f"{name}.pkl", shuffled=True)
    runs = play_round(sandbox, server, 2)
    alpha, beta = runs["alpha"], runs["beta"]
    for run in (alpha, beta):
        health = run.detail["health"]
        assert health["rounds"] == 3 and "corr_example" in health["band"]
        assert any(reason.startswith("corr_example") for reason in health["suspect"]), health
        assert abs(health["figures"]["corr_example"]) < 0.2
    assert alpha.state is RunState.SUBMITTED and alpha.detail["fallback"] == FALLBACK
    assert alpha.detail["primary_error"].startswith("suspect: ")
    assert beta.state is RunState.SUBMITTED and not beta.detail.get("fallback")
    warned = [line.message for line in server.runtime.ledger.logs(beta.id)]
    assert any(m.startswith("suspect: ") and 'on_suspect = "warn"' in m for m in warned)
    subs = {s["model_name"]: s for s in sandbox.submissions()
            if s["round_number"] == alpha.round_number}
    assert sorted(subs) == ["alpha", "beta"]
    # what alpha submitted is the benchmark column, not its own predictions
    kept = server.runtime.ledger.predictions(alpha.id)
    assert kept is not None
    own = server.runtime.ledger.predictions(beta.id)
    assert own is not None and kept != own
