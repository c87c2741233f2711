"""While a solo model predicts on every core, the next in line loads on the idle worker and
then predicts there; a load that fails fails only its own run, once; a run cancelled while
its model loads ahead leaves no worker busy."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from executor_data import ROWS, until_no_task_runs, write_live

from numerai_autopilot.config import ExecutorConfig
from numerai_autopilot.executor import (
    Executor,
    Expected,
    PredictJob,
    PredictorLoadError,
    parse_predictor,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

_WAIT_S = 60.0  # far beyond any of these steps: reaching it means something hangs
# earlier rounds say: long on one thread, and it scaled over two (so it runs solo)
_SOLO = Expected(seconds=5.0, one_thread_s=10.0, wide_thread_s=6.0, busy=0.95)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def executor(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Executor]:
    async with Executor(ExecutorConfig(workers=2, memory_limit="1GiB"),
                        local_directory=tmp_path_factory.mktemp("dask")) as ex:
        yield ex


@pytest.fixture
def live(tmp_path: Path) -> Path:
    path = tmp_path / "live.arrow"
    write_live(path)
    return path


def _model(folder: Path, name: str, live: Path, *, load_s: float = 0.0, predict_s: float = 0.0,
           load_error: str = "") -> PredictJob:
    """A predictor that appends `import`, `load` (at import, after `load_s`) and `predict`,
    `predicted` (around `predict_s`) events with its process id to `folder/name.log`."""
    log = folder / f"{name}.log"
    source = folder / f"{name}.py"
    source.write_text(
        "import json, os, time\n"
        "def note(event):\n"
        f"    with open({str(log)!r}, 'a') as fh:\n"
        "        fh.write(json.dumps([event, time.time(), os.getpid()]) + '\\n')\n"
        "note('import')\n"
        f"time.sleep({load_s})\n"
        + (f"raise RuntimeError({load_error!r})\n" if load_error else "")
        + "note('load')\n"
        "def predict(live):\n"
        "    note('predict')\n"
        f"    time.sleep({predict_s})\n"
        "    note('predicted')\n"
        "    return live['feature_0'].rank(pct=True).rename('prediction').to_frame()\n")
    return PredictJob(run_id=f"run-{name}", model_name=name,
                      predictor=parse_predictor(f"{source}:predict", folder),
                      live_path=live, timeout_s=60)


def _log(folder: Path, name: str) -> list[tuple[str, float, int]]:
    path = folder / f"{name}.log"
    return [tuple(json.loads(line)) for line in  # type: ignore[misc]
            (path.read_text().splitlines() if path.exists() else [])]


def _events(folder: Path, name: str) -> dict[str, tuple[float, int]]:
    """The model's last time and process of each event."""
    return {event: (at, pid) for event, at, pid in _log(folder, name)}


async def test_the_next_model_loads_while_the_solo_one_predicts(
        executor: Executor, tmp_path: Path, live: Path) -> None:
    first = _model(tmp_path, "first", live, predict_s=3.0)
    second = _model(tmp_path, "second", live, load_s=1.0)
    executor.predict_times.update(first=_SOLO, second=Expected(4.0, 8.0, 6.0, 0.95))
    one, two = await asyncio.wait_for(
        asyncio.gather(executor.predict(first), executor.predict(second)), _WAIT_S)
    assert one.threads == 2 and two.threads == 2  # each alone on every core, in turn
    firsts, seconds = _events(tmp_path, "first"), _events(tmp_path, "second")
    assert seconds["load"][0] < firsts["predicted"][0]  # loaded meanwhile
    assert seconds["predict"][0] > firsts["predicted"][0]  # its turn came after
    assert seconds["predict"][1] == seconds["load"][1]  # where it was loaded: warm there
    assert two.loaded_ahead and two.cold and two.load_s >= 1.0
    assert two.predictions is not None and len(two.predictions) == ROWS
    assert not one.loaded_ahead
    # the first shared its cores with that load: its time there does not judge its scaling
    assert executor.predict_times["first"].wide_thread_s == _SOLO.wide_thread_s
    assert executor.predict_times["second"].wide_thread_s != 6.0  # it had them to itself


async def test_a_model_failing_to_load_ahead_fails_alone_and_is_loaded_once(
        executor: Executor, tmp_path: Path, live: Path) -> None:
    first = _model(tmp_path, "first2", live, predict_s=2.0)
    broken = _model(tmp_path, "broken", live, load_s=0.3, load_error="weights file is corrupt")
    executor.predict_times.update(first2=_SOLO, broken=_SOLO)
    one, two = await asyncio.wait_for(asyncio.gather(
        executor.predict(first), executor.predict(broken), return_exceptions=True), _WAIT_S)
    assert not isinstance(one, BaseException) and one.predictions is not None
    assert isinstance(two, PredictorLoadError)
    assert "'broken'" in str(two) and "weights file is corrupt" in str(two)
    # tried once, ahead of its turn: its turn did not load it a second time
    assert [event for event, _, _ in _log(tmp_path, "broken")] == ["import"]


async def test_a_run_cancelled_while_its_model_loads_ahead_frees_the_worker(
        executor: Executor, tmp_path: Path, live: Path) -> None:
    first = _model(tmp_path, "first3", live, predict_s=4.0)
    slow = _model(tmp_path, "slowload", live, load_s=2.5)
    executor.predict_times.update(first3=_SOLO, slowload=_SOLO)
    running = asyncio.ensure_future(executor.predict(first))
    waiting = asyncio.ensure_future(executor.predict(slow))
    deadline = time.monotonic() + _WAIT_S
    while "predict" not in _events(tmp_path, "first3"):
        assert time.monotonic() < deadline, "the first model never predicted"
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # its load ahead is under way on the other worker
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert (await asyncio.wait_for(running, _WAIT_S)).predictions is not None
    await until_no_task_runs(executor.client, _WAIT_S)
    assert not executor._started  # nothing left in flight


