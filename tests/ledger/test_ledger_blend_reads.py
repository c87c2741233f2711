"""What a blend reads of its members: their runs of a round (`Ledger.round_runs`) and their
kept predictions, written by another instance (another engine on the same SQLite file or
PostgreSQL database) while the blend waits."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from ledger_helpers import new_run

from numerai_autopilot.config import ModelConfig
from numerai_autopilot.ledger import Change, Ledger, Run, RunState
from numerai_autopilot.runs.blend import Blender, BlendError

ROUND = 512
IDS = [f"n{i:015x}" for i in range(200)]


def live_file(path: Path) -> Path:
    """A round's live file (Arrow IPC) with only its ids, as the round data cache has it."""
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(
            sink, pa.schema([("id", pa.string())])) as writer:
        writer.write_table(pa.table({"id": IDS}))
    return path


def csv(seed: int) -> bytes:
    values = np.random.default_rng(seed).uniform(0.0, 1.0, len(IDS))
    return pd.DataFrame({"id": IDS, "prediction": values}).to_csv(index=False).encode()


def predicted(ledger: Ledger, name: str, seed: int, *, until: RunState) -> Run:
    """A member's run of the round, its predictions kept, moved on to `until`."""
    run, _ = ledger.record(new_run(model_name=name, model_id=f"model-{name}"))
    ledger.claim_run(run.id, "other-instance")
    ledger.advance(run.id, RunState.DOWNLOADING, owner="other-instance")
    ledger.advance(run.id, RunState.PREDICTING, owner="other-instance")
    held = until is RunState.HELD
    (run,) = ledger.advance_many([Change(
        run.id, RunState.HELD if held else RunState.UPLOADING, owner="other-instance",
        via=RunState.VALIDATING, predictions=(csv(seed), len(IDS)))])
    assert isinstance(run, Run)
    if until is RunState.SUBMITTED:
        run = ledger.advance(run.id, until, owner="other-instance", submission_id=f"sub-{name}")
    return run


def test_round_runs_are_the_named_models_runs_of_that_round(ledger: Ledger) -> None:
    alpha, _ = ledger.record(new_run())
    beta, _ = ledger.record(new_run(model_name="beta", model_id="model-beta"))
    ledger.record(new_run(round_number=513))
    ledger.record(new_run(model_name="gamma", model_id="model-gamma"))
    ledger.record(new_run(tournament=11, model_name="beta", model_id="model-beta"))
    ledger.record(new_run(round_number=None, is_test=True, trigger_id="test-1"))
    found = ledger.round_runs(8, ROUND, ["alpha", "beta"])
    assert [run.id for run in found] == [alpha.id, beta.id]


async def test_a_blend_waits_for_a_member_another_instance_runs(
    ledger_url: str, tmp_path: Path
) -> None:
    live = live_file(tmp_path / "live.arrow")
    ens = ModelConfig(name="ens", blend={"alpha": 0.6, "beta": 0.4, "gamma": 0.3})
    with Ledger.from_url(ledger_url) as ours, Ledger.from_url(ledger_url) as theirs:
        ours.migrate()
        blend_run, _ = ours.record(new_run(model_name="ens", model_id="model-ens"))
        predicted(theirs, "alpha", 1, until=RunState.SUBMITTED)
        predicted(theirs, "gamma", 3, until=RunState.HELD)  # suspect: not blended
        blending = asyncio.create_task(Blender(ours, poll_s=0.05).blend(
            blend_run, ens, live, ROUND, deadline=time.time() + 600))
        await asyncio.sleep(0.3)
        assert not blending.done()  # beta has no run yet
        beta = await asyncio.to_thread(predicted, theirs, "beta", 2, until=RunState.UPLOADING)
        outcome = await asyncio.wait_for(blending, 30)
    assert outcome.csv is not None and outcome.rows == len(IDS)
    assert set(outcome.detail["blend"]) == {"alpha", "beta"}  # type: ignore[arg-type]
    assert outcome.detail["blend"]["beta"] == {"weight": 0.4, "run": beta.id}  # type: ignore[index]
    assert "is held as suspect" in outcome.detail["blend_missing"]["gamma"]  # type: ignore[index]
    got = pd.read_csv(pd.io.common.BytesIO(outcome.csv)).set_index("id")["prediction"]
    ranks = {seed: (pd.Series(np.random.default_rng(seed).uniform(0.0, 1.0, len(IDS)),
                              index=IDS).rank() - 0.5) / len(IDS) for seed in (1, 2)}
    want = (0.6 * ranks[1] + 0.4 * ranks[2]) / 1.0
    np.testing.assert_allclose(got.reindex(IDS).to_numpy(), want.to_numpy(), rtol=1e-9)


async def test_a_blend_stops_waiting_at_its_deadline(ledger: Ledger, tmp_path: Path) -> None:
    live = live_file(tmp_path / "live.arrow")
    ens = ModelConfig(name="ens", blend={"alpha": 0.5, "beta": 0.5}, blend_wait=0.5)
    blend_run, _ = ledger.record(new_run(model_name="ens", model_id="model-ens"))
    predicted(ledger, "alpha", 1, until=RunState.SUBMITTED)
    ledger.record(new_run(model_name="beta", model_id="model-beta"))  # queued, never runs
    started = time.monotonic()
    outcome = await Blender(ledger, poll_s=0.05).blend(
        blend_run, ens, live, ROUND, deadline=time.time() + 600)
    assert time.monotonic() - started < 10
    assert "is queued when the blend stopped waiting" in \
        outcome.detail["blend_missing"]["beta"]  # type: ignore[index]
    with pytest.raises(BlendError, match=r"members missing for round 512: beta \(0\.5\): its "
                                         r"run \S+ is queued when the blend stopped waiting"):
        await Blender(ledger, poll_s=0.05).blend(
            blend_run, ens.model_copy(update={"blend_missing": "fail"}), live, ROUND,
            deadline=time.time() + 600)
