"""Predictors kept loaded in a worker process between rounds, within a memory budget.

Runs in Dask workers only. A model loaded once stays warm for the next round (a round then
pays its predict time, not its load time) as long as the warm models fit the worker's
budget: each model's size is the growth of the process's memory while it loaded, and the
least recently used models are dropped first to make room for the next one. A model whose
size (measured at an earlier load, else its file's size) is at least the worker's memory
limit is refused before loading, with both sizes, instead of taking the worker down.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from numerai_autopilot.config import format_size
from numerai_autopilot.errors import PredictorError
from numerai_autopilot.executor.predictors import LoadedPredictor, PredictorSpec, load_predictor

# A file predictor's module is registered under this prefix (`predictors._exec_file`):
# dropping a model drops its module too, or the module would keep the model alive.
_FILE_MODULE_PREFIX = "_autopilot_predictor_"


@dataclass(frozen=True)
class _Warm:
    loaded: LoadedPredictor
    size: int  # bytes the process grew by while it loaded


class WarmModels:
    """The loaded predictors of one worker process, least recently used first.

    `get` returns a predictor ready to call; `stats` says how often each key was loaded,
    `sizes` what each warm one takes. Thread-safe (a worker may run several task threads).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._warm: OrderedDict[str, _Warm] = OrderedDict()
        self._loads: dict[str, int] = {}
        self._measured: dict[str, int] = {}  # by file or module (`_where`), last load's size

    def get(self, spec: PredictorSpec, *, budget: int | None,
            limit: int | None) -> tuple[LoadedPredictor, float, bool]:
        """(predictor, load seconds, loaded now): the warm one, or loaded now.

        `budget`: bytes the warm models may take together (None: no bound); `limit`: the
        worker's memory limit (None: none).

        :raises PredictorError: the model is at least `limit` (nothing is loaded), or
            loading it failed.
        """
        with self._lock:
            hit = self._warm.get(spec.key)
            if hit is not None:
                self._warm.move_to_end(spec.key)
                return hit.loaded, 0.0, False
            where = _where(spec)
            expected = self._measured.get(where, _file_size(spec))
            if limit is not None and expected >= limit:
                how = "measured when it last loaded" if where in self._measured else "on disk"
                raise PredictorError(
                    f"predictor {spec.ref!r} takes {format_size(expected)} ({how}), at least "
                    f"the worker's memory limit of {format_size(limit)}: raise "
                    "executor.memory_limit (and the machine's memory) or make the model smaller"
                )
            # an edited file's old version goes first, then the least recently used
            self._drop([k for k, w in self._warm.items() if _where(w.loaded.spec) == where])
            if budget is not None:
                self._fit(budget - expected)
            before = _rss()
            start = time.perf_counter()
            loaded = load_predictor(spec)
            load_s = time.perf_counter() - start
            size = max(_rss() - before, 0)
            self._measured[where] = size
            self._loads[spec.key] = self._loads.get(spec.key, 0) + 1
            if budget is None or size <= budget:
                self._warm[spec.key] = _Warm(loaded, size)
                if budget is not None:
                    self._fit(budget, keep=spec.key)
            return loaded, load_s, True

    def measured(self, spec: PredictorSpec) -> int:
        """What `spec`'s file or module took when it was last loaded here (0: never)."""
        with self._lock:
            return self._measured.get(_where(spec), 0)

    def stats(self) -> dict[str, int]:
        """How many times each predictor key was loaded in this process."""
        with self._lock:
            return dict(self._loads)

    def sizes(self) -> dict[str, int]:
        """The warm predictors' keys and sizes in bytes, least recently used first."""
        with self._lock:
            return {key: warm.size for key, warm in self._warm.items()}

    def _fit(self, room: int, keep: str | None = None) -> None:
        """Drop least recently used models (never `keep`) until the rest take <= `room`."""
        used = sum(w.size for w in self._warm.values())
        victims: list[str] = []
        for key, warm in self._warm.items():
            if used <= room:
                break
            if key != keep:
                victims.append(key)
                used -= warm.size
        self._drop(victims)

    def _drop(self, keys: list[str]) -> None:
        for key in keys:
            warm = self._warm.pop(key)
            module = getattr(warm.loaded.function, "__module__", "") or ""
            if module.startswith(_FILE_MODULE_PREFIX):
                sys.modules.pop(module, None)
        if keys:
            gc.collect()


def _where(spec: PredictorSpec) -> str:
    """The file or module a spec loads, whatever its version."""
    return f"{spec.kind.value}:{spec.target}:{spec.function or ''}"


def _file_size(spec: PredictorSpec) -> int:
    path = spec.path
    try:
        return Path(path).stat().st_size if path is not None else 0
    except OSError:
        return 0


def _rss() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)
