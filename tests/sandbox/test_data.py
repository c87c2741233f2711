"""Synthetic data: Numerai's layout, deterministic from the seed, with a learnable signal."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from numerai_autopilot.sandbox.data import DataStore
from numerai_autopilot.sandbox.settings import TEST_SIZES, DataSizes, SandboxSettings


def _store(path: Path, seed: int = 1, sizes: DataSizes = TEST_SIZES) -> DataStore:
    store = DataStore(SandboxSettings(data_dir=path, seed=seed, sizes=sizes))
    store.ensure_static()
    store.ensure_round(8, 1100)
    return store


def _read(store: DataStore, name: str, round_number: int = 1100) -> pd.DataFrame:
    return pd.read_parquet(store.path(name, round_number))


def test_live_layout(tmp_path: Path) -> None:
    store = _store(tmp_path)
    live = _read(store, "v5.3/live.parquet")
    features = json.loads(store.path("v5.3/features.json", 0).read_text())
    names = features["feature_sets"]["all"]
    assert len(live) == TEST_SIZES.live_rows and live.index.name == "id"
    assert live.index.str.fullmatch(r"n[0-9a-f]{15}").all() and live.index.is_unique
    assert list(live.columns) == ["era", *names, *features["targets"]]
    assert (live["era"] == "X").all()
    assert (live[names].dtypes == np.int8).all()
    assert live[names].min().min() >= 0 and live[names].max().max() <= 4
    assert live[features["targets"]].isna().all().all()
    assert features["targets"][0] == "target"
    sets = features["feature_sets"]
    assert (len(sets["small"]), len(sets["medium"]), len(names)) == (12, 30, 60)
    assert set(sets["small"]) <= set(sets["medium"]) <= set(names)
    assert all(n.startswith("feature_") for n in names)

    bench = _read(store, "v5.3/live_benchmark_models.parquet")
    assert bench.index.equals(live.index) and all(c.startswith("v53_") for c in bench.columns)
    example = _read(store, "v5.3/live_example_preds.parquet")
    assert list(example.columns) == ["prediction"] and example.index.equals(live.index)
    assert example["prediction"].between(0, 1, inclusive="neither").all()


def test_train_has_a_learnable_signal(tmp_path: Path) -> None:
    store = _store(tmp_path)
    train, validation = _read(store, "v5.3/train.parquet"), _read(store, "v5.3/validation.parquet")
    small = json.loads(store.path("v5.3/features.json", 0).read_text())["feature_sets"]["small"]
    assert set(train["target"].unique()) == {0.0, 0.25, 0.5, 0.75, 1.0}
    assert train["era"].nunique() == TEST_SIZES.train_eras
    assert not set(train["era"]) & set(validation["era"])
    x = np.c_[train[small].to_numpy(float), np.ones(len(train))]
    weights = np.linalg.lstsq(x, train["target"].to_numpy(), rcond=None)[0]
    validation["p"] = np.c_[validation[small].to_numpy(float), np.ones(len(validation))] @ weights
    per_era = validation.groupby("era")[["p", "target"]].apply(
        lambda g: np.corrcoef(g["p"], g["target"])[0, 1])
    assert per_era.mean() > 0.05 and (per_era > 0).all()
    example = _read(store, "v5.3/validation_example_preds.parquet")
    assert np.corrcoef(example["prediction"], validation["target"])[0, 1] > 0.05


def test_deterministic_from_the_seed(tmp_path: Path) -> None:
    a, b, c = _store(tmp_path / "a"), _store(tmp_path / "b"), _store(tmp_path / "c", seed=2)
    for name in ("v5.3/live.parquet", "v5.3/train.parquet", "v5.3/live_benchmark_models.parquet"):
        pd.testing.assert_frame_equal(_read(a, name), _read(b, name))
    assert not set(_read(a, "v5.3/live.parquet").index) & set(_read(c, "v5.3/live.parquet").index)
    assert store_text(a) == store_text(b) != store_text(c)


def store_text(store: DataStore) -> str:
    return store.path("v5.3/features.json", 0).read_text()


def test_each_round_has_new_ids_and_old_rounds_are_kept(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.ensure_round(8, 1101)
    first, second = _read(store, "v5.3/live.parquet"), _read(store, "v5.3/live.parquet", 1101)
    assert not set(first.index) & set(second.index)
    assert store.live_ids(1100) == frozenset(first.index)


def test_other_seed_or_sizes_regenerate(tmp_path: Path) -> None:
    store = _store(tmp_path)
    before = _read(store, "v5.3/live.parquet")
    store = _store(tmp_path, seed=9)
    after = _read(store, "v5.3/live.parquet")
    assert not before.index.equals(after.index)
    assert json.loads((tmp_path / "manifest.json").read_text())["seed"] == 9


def test_signals_and_crypto_layout(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.ensure_round(11, 1100)
    store.ensure_round(12, 1100)
    signals = _read(store, "signals/v2.1/live.parquet")
    assert signals["numerai_ticker"].is_unique and len(signals) == TEST_SIZES.signals_tickers
    crypto = _read(store, "crypto/v2.0/live_universe.parquet")
    assert crypto["symbol"].is_unique and len(crypto) == TEST_SIZES.crypto_symbols


def test_sizes_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="small_features"):
        DataSizes(small_features=50, medium_features=40)


@pytest.mark.slow
def test_default_sizes_generate_in_seconds(tmp_path: Path) -> None:
    started = time.perf_counter()
    store = _store(tmp_path, sizes=DataSizes())
    elapsed = time.perf_counter() - started
    live = _read(store, "v5.3/live.parquet")
    assert live.shape == (6_700, 1 + 2_748 + 6)
    assert len(_read(store, "v5.3/train.parquet")) == 20_000
    assert elapsed < 30
