"""Prediction health's figures against a straightforward pandas / scipy computation of each."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from pyarrow import feather
from scipy.stats import spearmanr

from numerai_autopilot.validation.health import figures, round_frame


def _write(frame: pd.DataFrame, path: Path) -> Path:
    feather.write_feather(pa.Table.from_pandas(frame), path, compression="uncompressed")
    return path


@pytest.fixture(params=["int8", "missing values"])
def classic(tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, object]:
    rng = np.random.default_rng(3)
    n, k = 400, 25
    ids = pd.Index([f"n{i:015x}" for i in rng.permutation(10**6)[:n]], name="id")
    features = pd.DataFrame(rng.integers(0, 5, (n, k)), index=ids,
                            columns=[f"feature_{i}" for i in range(k)]).astype("Int8")
    if request.param == "missing values":  # they count as the feature's mean
        features.iloc[rng.integers(0, n, 30), 3] = pd.NA
    else:  # as Numerai ships them: int8, none missing
        features = features.astype(np.int8)
    features.iloc[:, 7] = 2  # a constant feature has no correlation
    live = pd.concat([pd.DataFrame({"era": "X"}, index=ids), features], axis=1)
    score = features.iloc[:, 0].astype(float).to_numpy()
    bench = pd.DataFrame({"v53_a": score + rng.normal(size=n), "v53_b": rng.random(n)},
                         index=ids).sample(frac=1, random_state=1)  # another row order
    example = pd.DataFrame({"prediction": np.round(rng.random(n), 2)}, index=ids)  # ties
    predictions = pd.Series(np.round(score + rng.normal(size=n), 1), index=ids)  # ties too
    predictions = ((predictions.rank(pct=True) * 0.98) + 0.01).sample(frac=1, random_state=2)
    frame = round_frame(_write(live, tmp_path / "live.arrow"),
                        _write(bench, tmp_path / "bench.arrow"),
                        _write(example, tmp_path / "example.arrow"), tournament=8)
    csv = predictions.rename("prediction").to_frame().reset_index().to_csv(index=False).encode()
    return {"got": figures(csv, frame), "p": predictions, "features": features,
            "bench": bench, "example": example}


def test_classic_distribution(classic: dict[str, object]) -> None:
    got, p = classic["got"], classic["p"]
    assert isinstance(got, dict) and isinstance(p, pd.Series)
    assert got["rows"] == len(p)
    assert got["mean"] == pytest.approx(p.mean())
    assert got["std"] == pytest.approx(p.std(ddof=0))
    for name, q in (("q10", 0.1), ("q50", 0.5), ("q90", 0.9)):
        assert got[name] == pytest.approx(p.quantile(q))


def test_classic_correlations_are_spearman_with_each_reference(classic: dict[str, object]) -> None:
    got, p, bench, example = classic["got"], classic["p"], classic["bench"], classic["example"]
    assert isinstance(got, dict) and isinstance(p, pd.Series)
    assert isinstance(bench, pd.DataFrame) and isinstance(example, pd.DataFrame)
    for column in bench.columns:
        expected = spearmanr(p, bench[column].reindex(p.index)).statistic
        assert got[f"corr_{column}"] == pytest.approx(expected, abs=1e-9)
    expected = spearmanr(p, example["prediction"].reindex(p.index)).statistic
    assert got["corr_example"] == pytest.approx(expected, abs=1e-9)
    assert got["corr_v53_a"] > 0.3  # the planted relation is seen


def test_classic_exposure_is_the_largest_correlation_with_one_feature(
    classic: dict[str, object]
) -> None:
    got, p, features = classic["got"], classic["p"], classic["features"]
    assert isinstance(got, dict) and isinstance(p, pd.Series)
    assert isinstance(features, pd.DataFrame)
    ranks = p.rank()
    exposures = []
    for column in features.columns:
        values = features[column].astype(float).reindex(p.index)
        if values.std() > 0:
            exposures.append(abs(ranks.corr(values.fillna(values.mean()))))
    assert got["exposure"] == pytest.approx(max(exposures), abs=1e-5)  # float32 features


def test_signals_coverage_of_the_universe(tmp_path: Path) -> None:
    universe = pd.DataFrame({"numerai_ticker": [f"T{i} US" for i in range(200)],
                             "feature_signal_0": np.arange(200) % 5})
    live = _write(universe, tmp_path / "live.arrow")
    frame = round_frame(live, None, None, tournament=11)
    signals = pd.DataFrame({"numerai_ticker": [f"T{i} US" for i in range(150)] + ["ZZZ US"],
                            "signal": np.linspace(0.1, 0.9, 151)})
    got = figures(signals.to_csv(index=False).encode(), frame)
    assert got["coverage"] == pytest.approx(150 / 200)
    assert got["rows"] == 151 and got["mean"] == pytest.approx(signals["signal"].mean())
    assert "exposure" not in got
