"""Synthetic tournament frames with Numerai's layout, deterministic from a seed.

Every frame is drawn from its own random stream, keyed by (seed, what, data version, round),
so a file can be regenerated alone and a new round gets new live ids while old rounds keep
theirs. The planted signal: the main target is a noisy function of a few "informative"
features of the small feature set, so a model trained on ``train.parquet`` scores above zero
on ``validation.parquet``; the example predictions and benchmark models are built from it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .settings import DataSizes

_ADJECTIVES = (
    "abating", "bleary", "cuspate", "dewy", "eldritch", "frilly", "gimcrack", "hoary", "inky",
    "jaunty", "knobby", "leery", "mousy", "nutty", "oafish", "pithy", "quirky", "rusty",
    "sultry", "tawny", "umbral", "vapid", "wonky", "yawning", "zesty", "ashen", "brisk",
    "craggy", "dusky", "eerie", "fervid", "glassy",
)
_NOUNS = (
    "weakfish", "alder", "bittern", "coypu", "dace", "egret", "ferret", "gannet", "hake",
    "ibex", "jackdaw", "kestrel", "lamprey", "marmot", "newt", "ocelot", "plover", "quail",
    "rook", "skink", "tapir", "urchin", "vole", "wrasse", "yak", "zebu", "auk", "bream",
    "civet", "dunlin", "eland", "finch",
)
_TARGET_NAMES = (
    "target", "target_cyrusd_20", "target_cyrusd_60", "target_teager2b_20",
    "target_teager2b_60", "target_agnes_20", "target_claudia_20", "target_echo_20",
)
_BENCHMARK_KINDS = ("lgbm_cyrusd20", "lgbm_teager2b20", "lgbm_agnes20", "lgbm_echo20",
                    "lgbm_claudia20")
_COUNTRIES = ("US", "JP", "GB", "FR", "DE", "CA", "AU", "KR", "CH", "SE")
_TARGET_LEVELS = np.array([0.0, 0.25, 0.5, 0.75, 1.0], dtype=np.float32)
# Numerai's targets put 5%, 20%, 50%, 20%, 5% of each era into the five levels.
_TARGET_CUTS = np.array([0.05, 0.25, 0.75, 0.95])
_NOISE = 4.0  # noise sd relative to the unit-variance planted score


def _key(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def rng_for(seed: int, *parts: object) -> np.random.Generator:
    """A random stream for one artefact, independent of every other artefact's stream."""
    return np.random.default_rng([seed, *(_key(str(p)) for p in parts)])


@dataclass(frozen=True)
class Universe:
    """What stays fixed for a seed: feature names and sets, targets, the planted weights."""

    features: list[str]
    small: list[str]
    medium: list[str]
    targets: list[str]
    informative: np.ndarray  # indices into ``features``
    weights: np.ndarray

    def features_json(self) -> dict[str, object]:
        return {
            "feature_sets": {"small": self.small, "medium": self.medium, "all": self.features},
            "targets": self.targets,
        }


def universe(seed: int, sizes: DataSizes) -> Universe:
    rng = rng_for(seed, "universe")
    n_words = len(_ADJECTIVES) * len(_ADJECTIVES) * len(_NOUNS)
    if sizes.n_features > n_words:
        raise ValueError(f"data sizes: at most {n_words} features can be named")
    picks = rng.choice(n_words, size=sizes.n_features, replace=False)
    names = []
    for p in picks.tolist():
        a, rest = divmod(p, len(_ADJECTIVES) * len(_NOUNS))
        b, c = divmod(rest, len(_NOUNS))
        names.append(f"feature_{_ADJECTIVES[a]}_{_ADJECTIVES[b]}_{_NOUNS[c]}")
    order = rng.permutation(sizes.n_features)
    small = [names[i] for i in order[: sizes.small_features]]
    medium = [names[i] for i in order[: sizes.medium_features]]
    informative = np.sort(order[: sizes.informative_features])
    weights = rng.normal(size=sizes.informative_features)
    weights /= np.sqrt((weights**2).sum() * 2.0)  # features 0..4 have variance 2
    targets = list(_TARGET_NAMES[: sizes.n_targets])
    targets += [f"target_extra_{i}_20" for i in range(len(targets), sizes.n_targets)]
    return Universe(names, small, medium, targets, informative, weights)


def _ids(rng: np.random.Generator, n: int) -> list[str]:
    values = rng.integers(0, 2**60, size=n * 2, dtype=np.int64)
    unique = pd.unique(values)[:n]
    if len(unique) < n:  # pragma: no cover - 2**60 values, n in the thousands
        raise RuntimeError("id collision while generating synthetic ids")
    return [f"n{v:015x}" for v in unique.tolist()]


def _features(rng: np.random.Generator, n_rows: int, uni: Universe) -> np.ndarray:
    """Features as a (n_features, n_rows) int8 array: each row is one contiguous column."""
    return rng.integers(0, 5, size=(len(uni.features), n_rows), dtype=np.int8)


def _score(columns: np.ndarray, uni: Universe) -> np.ndarray:
    informative = columns[uni.informative].astype(np.float32) - 2.0
    return np.asarray(uni.weights.astype(np.float32) @ informative, dtype=np.float64)


def _bin_by_era(raw: np.ndarray, eras: np.ndarray) -> np.ndarray:
    out = np.empty(len(raw), dtype=np.float32)
    for era in np.unique(eras):
        idx = np.flatnonzero(eras == era)
        ranks = np.argsort(np.argsort(raw[idx])) / max(len(idx) - 1, 1)
        out[idx] = _TARGET_LEVELS[np.searchsorted(_TARGET_CUTS, ranks, side="right")]
    return out


def _rank01(values: np.ndarray) -> np.ndarray:
    """Ranks mapped into the open interval (0, 1), as float32."""
    ranks = np.argsort(np.argsort(values))
    return ((ranks + 0.5) / len(values)).astype(np.float32)


def _frame(ids: list[str], eras: np.ndarray | str, columns: np.ndarray, uni: Universe,
           targets: np.ndarray | None) -> pd.DataFrame:
    index = pd.Index(ids, name="id")
    features = pd.DataFrame(columns.T, columns=uni.features, index=index)
    era = pd.DataFrame({"era": eras}, index=index)
    if targets is None:
        targets = np.full((len(ids), len(uni.targets)), np.nan, dtype=np.float32)
    target = pd.DataFrame(targets, columns=uni.targets, index=index)
    return pd.concat([era, features, target], axis=1)


def _targets(rng: np.random.Generator, score: np.ndarray, eras: np.ndarray,
             uni: Universe) -> np.ndarray:
    main = score + rng.normal(scale=_NOISE, size=len(score))
    out = np.empty((len(score), len(uni.targets)), dtype=np.float32)
    out[:, 0] = _bin_by_era(main, eras)
    for j in range(1, len(uni.targets)):
        out[:, j] = _bin_by_era(main + rng.normal(scale=_NOISE, size=len(score)), eras)
    return out


def _era_labels(first: int, n_eras: int, n_rows: int) -> np.ndarray:
    per_era = np.array_split(np.arange(n_rows), n_eras)
    labels = np.empty(n_rows, dtype=object)
    for i, rows in enumerate(per_era):
        labels[rows] = f"{first + i:04d}"
    return labels


def history(seed: int, version: str, kind: str, uni: Universe, sizes: DataSizes) -> pd.DataFrame:
    """``train`` or ``validation``: eras of rows with features and planted targets."""
    rng = rng_for(seed, version, kind)
    if kind == "train":
        n_rows, first, n_eras = sizes.train_rows, 1, sizes.train_eras
    else:
        n_rows, first, n_eras = sizes.validation_rows, sizes.train_eras + 5, sizes.validation_eras
    columns = _features(rng, n_rows, uni)
    eras = _era_labels(first, n_eras, n_rows)
    targets = _targets(rng, _score(columns, uni), eras, uni)
    return _frame(_ids(rng, n_rows), eras, columns, uni, targets)


def example_predictions(frame: pd.DataFrame, uni: Universe, seed: int, tag: str) -> pd.DataFrame:
    """Numerai's example model: column ``prediction`` in (0, 1), correlated with the target."""
    columns = frame[uni.features].to_numpy(dtype=np.int8).T
    noise = rng_for(seed, tag, "example").normal(scale=1.0, size=len(frame))
    return pd.DataFrame({"prediction": _rank01(_score(columns, uni) + noise)}, index=frame.index)


@dataclass(frozen=True)
class LiveFiles:
    live: pd.DataFrame
    benchmark_models: pd.DataFrame
    example_preds: pd.DataFrame


def live(seed: int, version: str, round_number: int, uni: Universe,
         sizes: DataSizes) -> LiveFiles:
    """The live files of one round: new ids every round, era ``X``, empty targets."""
    rng = rng_for(seed, version, "live", round_number)
    columns = _features(rng, sizes.live_rows, uni)
    ids = _ids(rng, sizes.live_rows)
    frame = _frame(ids, "X", columns, uni, None)
    score = _score(columns, uni)
    prefix = "v" + version.lstrip("v").replace(".", "")
    benchmarks = {
        f"{prefix}_{_BENCHMARK_KINDS[i % len(_BENCHMARK_KINDS)]}"
        + (f"_{i}" if i >= len(_BENCHMARK_KINDS) else ""):
        _rank01(score + rng.normal(scale=0.5 + 0.5 * i, size=len(score)))
        for i in range(sizes.benchmark_models)
    }
    bench = pd.DataFrame(benchmarks, index=frame.index)
    example = pd.DataFrame(
        {"prediction": _rank01(score + rng.normal(scale=1.0, size=len(score)))}, index=frame.index
    )
    return LiveFiles(frame, bench, example)


def round_date(round_number: int) -> dt.date:
    """A plausible calendar date for a round, so Signals rows carry a date."""
    return dt.date(2023, 7, 3) + dt.timedelta(days=round_number)


def signals_live(seed: int, round_number: int, sizes: DataSizes) -> pd.DataFrame:
    """Signals live universe: one row per ``numerai_ticker`` with a date and a few features."""
    uni_rng = rng_for(seed, "signals", "universe")
    tickers = _tickers(uni_rng, sizes.signals_tickers, with_country=True)
    rng = rng_for(seed, "signals", "live", round_number)
    data: dict[str, object] = {
        "numerai_ticker": tickers,
        "date": pd.Timestamp(round_date(round_number)),
    }
    for i in range(sizes.signals_features):
        data[f"feature_signal_{i}"] = rng.integers(0, 5, size=len(tickers), dtype=np.int8)
    return pd.DataFrame(data)


def crypto_universe(seed: int, round_number: int, sizes: DataSizes) -> pd.DataFrame:
    """Crypto live universe: one row per ``symbol``."""
    rng = rng_for(seed, "crypto", "universe")
    symbols = ["BTC", "ETH", "NMR", *_tickers(rng, sizes.crypto_symbols, with_country=False)]
    symbols = list(dict.fromkeys(symbols))[: sizes.crypto_symbols]
    return pd.DataFrame({"symbol": symbols})


def _tickers(rng: np.random.Generator, n: int, *, with_country: bool) -> list[str]:
    letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    seen: dict[str, None] = {}
    while len(seen) < n:
        length = int(rng.integers(2, 6))
        name = "".join(rng.choice(letters, size=length).tolist())
        if with_country:
            name += " " + _COUNTRIES[int(rng.integers(0, len(_COUNTRIES)))]
        seen.setdefault(name, None)
    return list(seen)
