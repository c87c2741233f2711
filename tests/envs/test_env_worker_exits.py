"""A worker of an environment that dies says how, as the local cluster's do: the run's error
names the exit code, and the environment's next model still predicts. A real environment
(`built`, made by `autopilot envs build`'s code with real pip), the local Dask cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
from envs_project import Project
from executor_data import ROWS, write_live

from numerai_autopilot.config import AppConfig
from numerai_autopilot.executor import Executor, PredictJob, WorkerDied, parse_predictor
from numerai_autopilot.runtime import environment_workers

CRASH = '''
import os


def predict(live):
    os._exit(3)
'''
GOOD = '''
def predict(live):
    first = [c for c in live.columns if c.startswith("feature_")][0]
    return (live[first].astype("float32").rank(pct=True) * 0.98 + 0.01).to_frame("prediction")
'''


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_an_environment_worker_that_exits_names_its_exit_code(
    built: tuple[Project, AppConfig], tmp_path: Path
) -> None:
    _, config = built
    (tmp_path / "crash.py").write_text(CRASH)
    (tmp_path / "good.py").write_text(GOOD)
    live = write_live(tmp_path / "live.arrow")

    def job(name: str) -> PredictJob:
        spec = parse_predictor(f"{tmp_path / name}.py:predict", tmp_path, ())
        return PredictJob(f"run-{name}", name, spec, live, environment="one", validate_for=8)

    executor_config = config.executor.model_copy(update={"workers": 1})
    async with Executor(executor_config, local_directory=tmp_path / "dask",
                        environments=environment_workers(config)) as executor:
        with pytest.raises(WorkerDied) as died:
            await executor.predict(job("crash"))
        out = await executor.predict(job("good"))
    assert str(died.value).startswith("model 'crash': worker died (exit code 3) while predicting")
    assert out.rows == ROWS
