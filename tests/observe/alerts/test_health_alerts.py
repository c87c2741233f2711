"""Alerts on suspect runs from the real server: a held run's alert links to its page, a
warned one says it was submitted anyway; both carry the figures, and no secret."""

from __future__ import annotations

from pathlib import Path

from alert_receiver import Receiver
from app_harness import running_app
from health_models import play_round, write_linear_pickle
from test_server_alerts import assert_no_secrets

from numerai_autopilot.ledger import RunState
from numerai_autopilot.sandbox.settings import SandboxSettings
from numerai_autopilot.sandbox.testing import RunningSandbox

PUBLIC_URL = "https://autopilot.example.org"


def test_suspect_runs_alert_with_their_figures_and_the_held_one_with_its_link(
    tmp_path: Path, sandbox: RunningSandbox, sandbox_settings: SandboxSettings,
    receiver: Receiver,
) -> None:
    models: dict[str, str | dict[str, object]] = {}
    for name, on_suspect in (("alpha", "hold"), ("beta", "warn")):
        write_linear_pickle(sandbox_settings.data_dir, tmp_path / f"{name}.pkl")
        models[name] = {"predictor": str(tmp_path / f"{name}.pkl"), "on_suspect": on_suspect}
    alerts = {"urls": [receiver.url], "before_close": 0, "round_summary": False}
    with running_app(tmp_path, sandbox, models, alerts=alerts,
                     server={"public_url": PUBLIC_URL}) as app:  # type: ignore[arg-type]
        app.register_webhooks()
        for _ in range(3):
            play_round(sandbox, app, 2)
        for name in models:
            write_linear_pickle(sandbox_settings.data_dir, tmp_path / f"{name}.pkl",
                                shuffled=True)
        runs = play_round(sandbox, app, 2)
        assert runs["alpha"].state is RunState.HELD
        assert runs["beta"].state is RunState.SUBMITTED
        [held] = receiver.wait(1, match="held")
        assert held["title"] == "alpha: suspect run held, not submitted"
        assert f"{PUBLIC_URL}/runs/{runs['alpha'].id}" in held["message"]
        assert "Prediction health:" in held["message"]
        assert "- corr_example" in held["message"] and "(band " in held["message"]
        [warned] = receiver.wait(1, match="suspect predictions")
        assert warned["title"] == "beta: suspect predictions"
        assert "submitted anyway" in warned["message"]
        assert "- corr_example" in warned["message"]
        assert_no_secrets(app, receiver)
