"""`autopilot run` of a blend model, as a user runs it (real processes against the sandbox).

It blends the members' predictions already kept for the round (by a server sharing the
ledger, or by `autopilot run MEMBER`); a member without a run of the round is missing at
once, with the command that makes one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from blend_support import blend_sandbox, expected_blend, member, read_submission
from server_harness import make_config, sandbox_env

from numerai_autopilot.sandbox.settings import SandboxSettings
from numerai_autopilot.sandbox.testing import RunningSandbox

WEIGHTS = {"alpha": 0.6, "beta": 0.4}


@pytest.fixture
def sandbox(sandbox_settings: SandboxSettings) -> Iterator[RunningSandbox]:
    with blend_sandbox(sandbox_settings) as running:
        yield running


def autopilot(*args: str, cwd: Path, sandbox: RunningSandbox) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "numerai_autopilot", *args, "-c", str(cwd / "autopilot.toml")],
        cwd=cwd, env={**os.environ, "COLUMNS": "200", **sandbox_env(sandbox)},
        capture_output=True, text=True, timeout=240, check=False,
    )


def test_run_blends_the_members_kept_predictions_and_names_those_without_a_run(
    tmp_path: Path, sandbox: RunningSandbox
) -> None:
    make_config(tmp_path, sandbox, {"alpha": member("first_half"), "beta": member("second_half"),
                                    "ens": {"blend": WEIGHTS}})
    number = sandbox.state()["current_rounds"]["8"]["number"]
    alone = autopilot("run", "ens", "--dry-run", cwd=tmp_path, sandbox=sandbox)
    said = alone.stdout + alone.stderr
    assert alone.returncode == 1, said
    assert f"alpha (0.6): no run of round {number}; run it first (`autopilot run alpha`)" in said
    assert "beta (0.4): no run of round" in said
    for name in WEIGHTS:
        done = autopilot("run", name, "--dry-run", cwd=tmp_path, sandbox=sandbox)
        assert done.returncode == 0, done.stdout + done.stderr
    done = autopilot("run", "ens", "--dry-run", cwd=tmp_path, sandbox=sandbox)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "blended alpha (0.6, run" in done.stdout
    out = tmp_path / "predictions"
    members = {name: read_submission(out / f"{name}-round{number}.csv") for name in WEIGHTS}
    want = expected_blend(members, WEIGHTS)
    got = read_submission(out / f"ens-round{number}.csv")
    np.testing.assert_allclose(got.reindex(want.index).to_numpy(), want.to_numpy(), rtol=1e-9)
    assert sandbox.submissions() == []
