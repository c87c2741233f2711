"""An environment with another pandas than the service's: its model predicts with that pandas
on a worker started from the environment's interpreter, and only the validated submission
CSV crosses back (no frame pickled between two pandas versions). pandas 2.2.3 comes from
PyPI (or pip's cache); without either the test is skipped, saying so."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import httpx
import pandas as pd
import pytest
from executor_data import ROWS, write_live

from numerai_autopilot.config import load_config
from numerai_autopilot.executor import Executor, PredictJob, parse_predictor
from numerai_autopilot.runtime import environment_workers

OLD_PANDAS = "2.2.3"
PREDICTOR = '''
import pandas as pd
from pathlib import Path

def predict(live):
    Path(__file__).with_name("seen").write_text(pd.__version__)
    first = [c for c in live.columns if c.startswith("feature_")][0]
    return (live[first].astype("float32").rank(pct=True) * 0.98 + 0.01).to_frame("prediction")
'''


def _pypi_reachable() -> bool:
    try:
        return httpx.head("https://pypi.org/simple/pandas/", timeout=5).status_code < 500
    except httpx.HTTPError:
        return False


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_a_model_predicts_with_its_environments_pandas(tmp_path: Path) -> None:
    assert pd.__version__ != OLD_PANDAS
    (tmp_path / "envs").mkdir()
    (tmp_path / "envs" / "old.txt").write_text(f"pandas=={OLD_PANDAS}\n")
    (tmp_path / "autopilot.toml").write_text(
        '[environments.old]\nrequirements = "envs/old.txt"\n')
    built = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "numerai_autopilot", "envs", "build", "-c",
                         str(tmp_path / "autopilot.toml")], capture_output=True, text=True,
        timeout=500, check=False)
    if built.returncode != 0 and not _pypi_reachable():
        pytest.skip(f"pandas=={OLD_PANDAS} cannot be installed: PyPI is not reachable")
    assert built.returncode == 0, built.stdout + built.stderr
    config = load_config(tmp_path / "autopilot.toml", env={})
    (tmp_path / "old_pandas.py").write_text(PREDICTOR)
    spec = parse_predictor(f"{tmp_path / 'old_pandas.py'}:predict", tmp_path, ())
    live = write_live(tmp_path / "live.arrow")
    executor_config = config.executor.model_copy(update={"workers": 1})
    async with Executor(executor_config, local_directory=tmp_path / "dask",
                        environments=environment_workers(config)) as executor:
        out = await executor.predict(PredictJob("run-1", "old", spec, live, environment="old",
                                                validate_for=8))
    assert (tmp_path / "seen").read_text() == OLD_PANDAS
    assert out.predictions is None and out.csv is not None and out.rows == ROWS
    assert out.csv.startswith(b"id,prediction\n")
