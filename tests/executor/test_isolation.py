"""What a predictor can reach from its worker: no key, no secret, and not the server."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from executor_data import write_live

from numerai_autopilot.config import ExecutorConfig
from numerai_autopilot.executor import Executor, PredictJob, PredictorRaised
from numerai_autopilot.executor.predictors import parse_predictor

HERE = Path(__file__).parent
SECRETS = {"NUMERAI_PUBLIC_ID": "PUBLIC", "NUMERAI_SECRET_KEY": "KEY",
           "AUTOPILOT_SECRET": "s" * 40, "AUTOPILOT_ADMIN_TOKEN": "admin",
           "AUTOPILOT_PREVIOUS_SECRETS": "o" * 40, "PGPASSWORD": "ledger-password"}


async def test_a_predictor_finds_no_secret_and_no_server_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)  # as the server has them
    live = write_live(tmp_path / "live.arrow")
    job = PredictJob(run_id="run-1", model_name="alpha", live_path=live, timeout_s=60,
                     predictor=parse_predictor("predictors_fixture:snoop", HERE))
    async with Executor(ExecutorConfig(workers=1, memory_limit="1GiB"),
                        local_directory=tmp_path / "dask") as executor:
        with pytest.raises(PredictorRaised, match="found ") as raised:
            await executor.predict(job)
    found = json.loads(str(raised.value).split("found ", 1)[1].splitlines()[0])
    assert "PATH" in found["worker"]  # the environment was read
    assert not set(SECRETS) & set(found["worker"])
    scheduler = found["scheduler"]
    assert not set(SECRETS) & set(scheduler["environ"])
    assert scheduler["pid"] != os.getpid()  # not the server's process
    assert not {"numerai_autopilot.runtime", "numerai_autopilot.web"} & set(scheduler["modules"])
