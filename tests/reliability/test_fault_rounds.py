"""Whole rounds against a faulty Numerai: every model submitted exactly once, or failed with
the cause; never a create_submission after a failed PUT.

One sandbox and one real server process (SQLite ledger) serve the module; each test opens a
new round under its faults, so the sandbox fires the three models' webhooks like Numerai.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from reliability_harness import (
    Capture,
    assert_no_put_then_create,
    assert_no_secrets,
    assert_submitted_once,
    module_sandbox_settings,
    open_round,
    predictor,
    register_webhooks,
    sandbox_env,
    secret_values,
    wait_final,
    write_config,
)
from server_process import ServerProcess

from numerai_autopilot.ledger import Ledger, Run, RunState
from numerai_autopilot.sandbox.testing import RunningSandbox, running_sandbox

MODELS = ("alpha", "beta", "gamma")


@dataclass
class Rig:
    sandbox: RunningSandbox
    server: ServerProcess
    ledger: Ledger
    config: Path
    capture: Capture

    def round_under(self, faults: dict[str, Any], *, length_s: float | None = None,
                    timeout: float = 90.0) -> Outcome:
        """Set `faults`, open a round, wait for its three runs to end; faults cleared after."""
        seen = len(self.injected())
        uploads = len(self.sandbox.uploads())
        self.sandbox.set_faults(**faults)
        try:
            number = open_round(self.sandbox, length_s)["number"]
            runs = wait_final(self.ledger, len(MODELS), timeout,
                              where=lambda run: run.round_number == number)
        finally:
            self.sandbox.clear_faults()
        return Outcome(runs, self.injected()[seen:], self.sandbox.uploads()[uploads:])

    def injected(self) -> list[dict[str, Any]]:
        injected: list[dict[str, Any]] = self.sandbox.sandbox.faults.view()["injected"]
        return injected


@dataclass
class Outcome:
    runs: list[Run]
    injected: list[dict[str, Any]]  # faults the sandbox injected during the round
    uploads: list[dict[str, Any]]  # PUTs it received


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory, sandbox_data_cache: Path) -> Iterator[Rig]:
    base = tmp_path_factory.mktemp("fault-rounds")
    with running_sandbox(module_sandbox_settings(base, sandbox_data_cache)) as sandbox:
        config = write_config(base, sandbox, {name: predictor("good") for name in MODELS})
        server = ServerProcess(config, sandbox_env(sandbox), base / "server.log").ready()
        ledger = Ledger.from_url(f"sqlite:///{base / 'ledger.db'}")
        register_webhooks(sandbox, server.url, MODELS)
        rig = Rig(sandbox, server, ledger, config, Capture())
        try:
            yield rig
        finally:
            server.stop()
            ledger.close()


@pytest.fixture
def no_leaks(rig: Rig) -> Iterator[None]:
    """After each test: grep everything it produced for secrets."""
    yield
    capture = Capture()
    capture.add_server(rig.server)
    capture.add_api(rig.server.url)
    capture.add_ledger(rig.ledger)
    capture.add_sandbox(rig.sandbox)
    assert_no_secrets(capture, secret_values(rig.sandbox))


FAULTS: dict[str, dict[str, Any]] = {
    "5xx-30pct-every-operation": {"seed": 1, "operations": {"*": {"error_rate": 0.3}}},
    "dropped-connections": {"seed": 2, "operations": {"*": {"drop_rate": 0.25}}},
    "latency-2s": {"operations": {"*": {"latency_ms": 2000}}},
    "put-failing-half": {"seed": 3, "put_failure_rate": 0.5},
    "download-cut-midway": {"cut_download_after_bytes": 20_000},
    "lost-create-answers": {"operations": {"create_submission": {"drop_rate": 1.0, "times": 3}}},
    # Numerai's own failures come as HTTP 200 with {"errors": [{"message": "Internal server
    # error"}]} (numerai/numerapi#15): retried like a 5xx.
    "http-200-internal-errors-30pct-every-operation": {
        "seed": 4, "operations": {"*": {"graphql_error_rate": 0.3}}},
    # The first two creates take effect, then answer an internal error; the submissions
    # listing that must find them fails 30% of the time too.
    "creates-applied-then-internal-errors": {"seed": 28, "operations": {
        "*": {"graphql_error_rate": 0.3},
        "create_submission": {"graphql_error_rate": 1.0, "graphql_error_after": True,
                              "times": 2}}},
}


@pytest.mark.parametrize("name", list(FAULTS))
def test_every_model_submitted_once_under(rig: Rig, no_leaks: None, name: str) -> None:
    outcome = rig.round_under(FAULTS[name])
    runs = outcome.runs
    assert_submitted_once(rig.sandbox, rig.ledger, runs)
    assert_no_put_then_create(rig.sandbox)
    if name != "latency-2s":
        assert outcome.injected, "the faults were never hit: the test tested nothing"
    if name == "creates-applied-then-internal-errors":
        applied = [f for f in outcome.injected if f["operation"] == "create_submission"]
        assert len(applied) == 2, outcome.injected
    if name == "download-cut-midway":
        live = [d for d in rig.sandbox.downloads()
                if d["filename"].endswith("live.parquet") and d["round_number"] == runs[0].round_number]
        assert any(not d["completed"] for d in live), live
        assert any(d["range_start"] > 0 and d["completed"] for d in live), "never resumed"
        assert sum(1 for d in live if d["range_start"] == 0) == 1, "restarted from zero"


@pytest.mark.slow
def test_numerai_down_for_a_while_then_back(rig: Rig, no_leaks: None) -> None:
    """Every call answers 503 for 25 s from the round's open; retries run to the round's close."""
    outcome = rig.round_under({"down_for_s": 25}, timeout=110)
    assert_submitted_once(rig.sandbox, rig.ledger, outcome.runs)
    assert [f for f in outcome.injected if f["kind"] == "down"]


@pytest.mark.slow
def test_put_always_failing_fails_the_run_at_the_close_without_creating(rig: Rig, no_leaks: None) -> None:
    """PUTs refused until the round closes: each run fails saying why, and no
    create_submission is ever sent (one would be dropped and recorded by the fault below)."""
    before = len(rig.sandbox.submissions())
    outcome = rig.round_under(
        {"put_failure_rate": 1.0, "operations": {"create_submission": {"drop_rate": 1.0}}},
        length_s=15, timeout=110,
    )
    for run in outcome.runs:
        assert run.state is RunState.FAILED, (run.model_name, run.state, run.error)
        assert run.error is not None and "upload" in run.error and "not created" in run.error, run.error
    assert len(rig.sandbox.submissions()) == before
    creates = [f for f in outcome.injected if f["operation"] == "create_submission"]
    assert not creates, f"create_submission sent after a failed PUT: {creates}"
    assert outcome.uploads, "no PUT was tried"
    assert all(u["status_code"] >= 500 for u in outcome.uploads), outcome.uploads


def test_cli_shows_no_secret_after_the_fault_rounds(rig: Rig) -> None:
    """Last in the module: `autopilot runs` over every run above (failed ones included)."""
    capture = Capture()
    capture.add_cli(rig.config, sandbox_env(rig.sandbox))
    assert "alpha" in capture.texts["cli runs"], capture.texts
    assert_no_secrets(capture, secret_values(rig.sandbox))
