"""The sandbox's dataset files on disk, laid out and named as Numerai names them.

Layout under ``data_dir`` (generated on first use, reused while ``manifest.json`` matches the
settings' seed and sizes)::

    manifest.json
    static/v5.3/features.json | train.parquet | validation.parquet | validation_example_preds.parquet
    rounds/8/<round>/v5.3/live.parquet | live_benchmark_models.parquet | live_example_preds.parquet
    rounds/11/<round>/signals/v2.1/live.parquet          (keyed by numerai_ticker)
    rounds/12/<round>/crypto/v2.0/live_universe.parquet  (keyed by symbol)

Files are written to a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from . import synth
from .settings import CLASSIC, CRYPTO, SIGNALS, SandboxSettings

_FORMAT = 1
_STATIC = ("features.json", "train.parquet", "validation.parquet",
           "validation_example_preds.parquet")
_LIVE = ("live.parquet", "live_benchmark_models.parquet", "live_example_preds.parquet")


def tournament_of(filename: str) -> int:
    """Which tournament a dataset name belongs to, by its folder."""
    if filename.startswith("signals/"):
        return SIGNALS
    if filename.startswith("crypto/"):
        return CRYPTO
    return CLASSIC


class DataStore:
    """Generates, finds and lists the dataset files. Thread-safe."""

    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings
        self.root = settings.data_dir
        self._lock = threading.Lock()
        self._universe: synth.Universe | None = None
        self._live_ids: dict[tuple[int, int], frozenset[str]] = {}
        self._keys_lock = threading.Lock()  # one read per round, however many uploads wait

    @property
    def universe(self) -> synth.Universe:
        if self._universe is None:
            self._universe = synth.universe(self.settings.seed, self.settings.sizes)
        return self._universe

    def _manifest(self) -> dict[str, object]:
        s = self.settings
        return {
            "format": _FORMAT,
            "seed": s.seed,
            "sizes": dataclasses.asdict(s.sizes),
            "data_versions": list(s.data_versions),
            "signals_version": s.signals_version,
            "crypto_version": s.crypto_version,
        }

    # ---- listing ----------------------------------------------------------------------
    def filenames(self, tournament: int | None) -> list[str]:
        """Dataset names for a tournament (all tournaments for ``None``), as listDatasets."""
        s = self.settings
        names: dict[int, list[str]] = {
            CLASSIC: sorted(f"{v}/{f}" for v in s.data_versions for f in (*_STATIC, *_LIVE)),
            SIGNALS: [f"signals/{s.signals_version}/live.parquet"],
            CRYPTO: [f"crypto/{s.crypto_version}/live_universe.parquet"],
        }
        if tournament is None:
            return [n for t in (CLASSIC, SIGNALS, CRYPTO) for n in names[t]]
        return names.get(tournament, [])

    def is_live(self, filename: str) -> bool:
        """Whether a file differs per round (live files) or is fixed (train, features.json)."""
        return filename.rsplit("/", 1)[-1] not in _STATIC

    def path(self, filename: str, round_number: int) -> Path:
        """Where a dataset lives on disk; call :meth:`ensure_round` first for live files."""
        if self.is_live(filename):
            return self.root / "rounds" / str(tournament_of(filename)) / str(round_number) / filename
        return self.root / "static" / filename

    # ---- generation -------------------------------------------------------------------
    def ensure_static(self) -> float:
        """Generate the fixed files unless the manifest says they are there. Returns seconds."""
        started = time.perf_counter()
        with self._lock:
            manifest_path = self.root / "manifest.json"
            wanted = self._manifest()
            if manifest_path.exists():
                try:
                    have = json.loads(manifest_path.read_text())
                except ValueError:
                    have = None
                if have != wanted:  # other seed or sizes: the old files are wrong
                    for sub in ("static", "rounds"):
                        shutil.rmtree(self.root / sub, ignore_errors=True)
                    manifest_path.unlink()
            self.root.mkdir(parents=True, exist_ok=True)
            for version in self.settings.data_versions:
                self._ensure_static_version(version)
            if not manifest_path.exists():
                _write_atomic(manifest_path, lambda p: p.write_text(json.dumps(wanted, indent=1)))
        return time.perf_counter() - started

    def _ensure_static_version(self, version: str) -> None:
        s, uni = self.settings, self.universe
        folder = self.root / "static" / version
        folder.mkdir(parents=True, exist_ok=True)
        features = folder / "features.json"
        if not features.exists():
            text = json.dumps(uni.features_json(), indent=1)
            _write_atomic(features, lambda p: p.write_text(text))
        for kind in ("train", "validation"):
            path = folder / f"{kind}.parquet"
            example = folder / "validation_example_preds.parquet"
            if path.exists() and (kind == "train" or example.exists()):
                continue
            frame = synth.history(s.seed, version, kind, uni, s.sizes)
            _write_parquet(path, frame)
            if kind == "validation":
                _write_parquet(example, synth.example_predictions(frame, uni, s.seed, version))

    def ensure_round(self, tournament: int, round_number: int) -> None:
        """Generate the live files of a round (new ids per round) if not on disk yet."""
        s = self.settings
        with self._lock:
            base = self.root / "rounds" / str(tournament) / str(round_number)
            if tournament == CLASSIC:
                for version in s.data_versions:
                    folder = base / version
                    if all((folder / name).exists() for name in _LIVE):
                        continue
                    folder.mkdir(parents=True, exist_ok=True)
                    files = synth.live(s.seed, version, round_number, self.universe, s.sizes)
                    _write_parquet(folder / "live_benchmark_models.parquet",
                                   files.benchmark_models)
                    _write_parquet(folder / "live_example_preds.parquet", files.example_preds)
                    _write_parquet(folder / "live.parquet", files.live)
            elif tournament == SIGNALS:
                path = base / "signals" / s.signals_version / "live.parquet"
                if not path.exists():
                    path.parent.mkdir(parents=True, exist_ok=True)
                    _write_parquet(path, synth.signals_live(s.seed, round_number, s.sizes),
                                   index=False)
            elif tournament == CRYPTO:
                path = base / "crypto" / s.crypto_version / "live_universe.parquet"
                if not path.exists():
                    path.parent.mkdir(parents=True, exist_ok=True)
                    _write_parquet(path, synth.crypto_universe(s.seed, round_number, s.sizes),
                                   index=False)

    def live_ids(self, round_number: int) -> frozenset[str]:
        """The Classic live ids of a round (first data version), for submission checks."""
        return self.round_keys(CLASSIC, round_number)

    def round_keys(self, tournament: int, round_number: int) -> frozenset[str]:
        """A round's live ids (Classic) or universe (Signals tickers, Crypto symbols).

        Read once per round: the uploads that arrive together wait for the first read
        instead of each reading the file again."""
        key = (tournament, round_number)
        with self._keys_lock:
            cached = self._live_ids.get(key)
            if cached is not None:
                return cached
            self.ensure_round(tournament, round_number)
            s = self.settings
            if tournament == SIGNALS:
                path = self.path(f"signals/{s.signals_version}/live.parquet", round_number)
                column = "numerai_ticker"
            elif tournament == CRYPTO:
                path = self.path(f"crypto/{s.crypto_version}/live_universe.parquet",
                                 round_number)
                column = "symbol"
            else:
                path = self.path(f"{s.data_versions[0]}/live.parquet", round_number)
                column = "id"  # the frame's index, a column in the file
            values = pq.read_table(path, columns=[column]).column(column).to_pylist()
            ids = frozenset(str(v) for v in values)
            self._live_ids[key] = ids
            return ids


def _write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_parquet(path: Path, frame: pd.DataFrame, *, index: bool = True) -> None:
    _write_atomic(path, lambda p: frame.to_parquet(p, index=index))
