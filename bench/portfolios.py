"""Heavy portfolios against the machine's limit: realistic models, one cold round each.

    portfolio_scenario("standard", workdir, sandbox, data_dir)   # -> PortfolioResult

The portfolios (each model also named in the sandbox; `NAMES` lists them):
- `standard`: 20 Classic models, LightGBM on all 2,748 features, 2,000 trees, 32 leaves,
  column sample 0.1 (Numerai's example-model settings), each its own file;
- `deep`: 3 models of `DEEP["trees"]` trees and 1,024 leaves (as large as trains in a few
  minutes on 2 cores);
- `ensemble`: 2 Model Upload pickles that each average 5 of the standard boosters;
- `big`: 6 Model Upload pickles holding ~1.5 GiB of weights each, on 2 workers of 4 GiB: warm
  models cannot all stay loaded.

Models are trained (or written) once into `.autopilot/bench-portfolios/<key>/`, the key a
hash of their parameters and of the training data. Two rounds leave the models' times in
the ledger (in the second, a long model never run on several threads is tried on every
core: `executor/slots.py`); the measured round is then a new server process's first, as
after a restart or on Cloud Run's next instance: models cold (their files read once before,
as the page cache would hold them), so that it pays what the limit counts, their earlier
runs known. Each model is measured alone in a process of its own that may use every core
(bench/measure_model.py), three times in a portfolio of fewer than ten models: the median of
its wall time and of its CPU time (all threads).

    limit_s = the live data's download + one upload
              + max(sum over models of CPU seconds / cores,   (the work, spread on every core)
                    the longest model's wall time alone)      (a model cannot be split)

The issue's wording divides each model's all-core wall time by the cores: for a model that
already uses every core that counts its parallelism twice, a bound no runner can reach.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import BENCH, PYTHON
from scenarios import round_scenario

from numerai_autopilot.executor.threads import machine_cores

ROOT = BENCH.parent
# Trees are grown on `rows` of the train data: their cost to predict is what matters here,
# and growing 2,000 trees on every row, 20 times over, would take hours on 2 cores.
STANDARD = {"count": 20, "trees": 2000, "leaves": 32, "colsample": 0.1, "min_leaf": 20,
            "rows": 5000}
DEEP = {"count": 3, "trees": 1000, "leaves": 1024, "colsample": 0.1, "min_leaf": 5,
        "rows": 8000}
ENSEMBLES, ENSEMBLE_SIZE = 2, 5
BIG = {"count": 6, "weights_bytes": 3 * 2**29, "memory_limit": "4GiB"}  # 1.5 GiB each
QUICK = {"standard": {"trees": 100, "rows": 1000}, "deep": {"trees": 50, "leaves": 64},
         "big": {"weights_bytes": 150 * 2**20, "memory_limit": "600MiB"}}
DEFAULT_EXECUTOR = 'workers = 2\nmemory_limit = "6GiB"\n'
NAMES = ([f"standard_{i:02d}" for i in range(STANDARD["count"])]
         + [f"deep_{i}" for i in range(DEEP["count"])]
         + [f"ensemble_{i}" for i in range(ENSEMBLES)]
         + [f"big_{i}" for i in range(BIG["count"])])
PORTFOLIOS = ("standard", "deep", "ensemble", "big")
# A model's alone figures are the median of this many runs (one run moves by tens of percent
# here); a limit summing many models' runs averages their noise out, so one each there.
ALONE_RUNS, ALONE_RUNS_MANY, MANY = 3, 1, 10


@dataclass
class PortfolioResult:
    """One portfolio's cold round against its limit."""

    wall_s: float
    limit_s: float
    peak_rss_mb: float
    submitted: int
    worker_restarts: int
    models: int
    alone: dict[str, dict[str, float]]  # per model alone on every core: load_s, predict_s, cpu_s

    @property
    def ratio(self) -> float:
        return self.wall_s / self.limit_s if self.limit_s else float("nan")


def portfolio_scenario(kind: str, workdir: Path, sandbox: Any, data_dir: Path,
                       quick: bool = False, only: list[str] | None = None) -> PortfolioResult:
    """Build `kind`'s models (cached; `quick`: small ones), run one cold round of them (or
    of `only` of them) on a fresh server, and measure each model alone for the limit."""
    refs = build(kind, data_dir, workdir / "models", quick)
    if only is not None:
        refs = {name: refs[name] for name in only}
    files = {Path(ref.split(":")[0]) for ref in refs.values()}
    for path in files | {b for f in files for b in f.parent.glob("*.txt")}:
        path.read_bytes()  # in the page cache for the round and for the limit alike
    big = _params("big", BIG, quick)
    executor = (f'workers = 2\nmemory_limit = "{big["memory_limit"]}"\n' if kind == "big"
                else DEFAULT_EXECUTOR)
    folders = sorted({str(Path(ref).parent) for ref in refs.values() if ref.endswith(".pkl")})
    if folders:  # Model Upload pickles load only from folders the config names
        executor += f"pickle_dirs = {json.dumps(folders)}\n"
    result = round_scenario(workdir / "server", sandbox, refs, warmup=2, restart=True,
                            rounds=1, executor=executor)
    live = _latest_live(data_dir)
    times = ALONE_RUNS if len(refs) < MANY else ALONE_RUNS_MANY
    alone = {name: measure_alone(ref, live, times) for name, ref in refs.items()}
    cores = machine_cores()
    work = sum(a["cpu_s"] for a in alone.values()) / cores
    longest = max(a["load_s"] + a["predict_s"] for a in alone.values())
    limit = result.download_s + max(work, longest) + result.upload_s
    return PortfolioResult(wall_s=result.wall_s, limit_s=limit, peak_rss_mb=result.rss_peak_mb,
                           submitted=result.submitted, worker_restarts=result.worker_restarts,
                           models=len(refs), alone=alone)


def build(kind: str, data_dir: Path, models_dir: Path, quick: bool = False) -> dict[str, str]:
    """The portfolio's predictor references (name -> ref), files under `models_dir`."""
    models_dir.mkdir(parents=True, exist_ok=True)
    train = data_dir / "static" / "v5.3" / "train.parquet"
    if kind in ("standard", "ensemble"):
        boosters = _trained("standard", _params("standard", STANDARD, quick), train)
    elif kind == "deep":
        boosters = _trained("deep", _params("deep", DEEP, quick), train)
    if kind in ("standard", "deep"):
        shutil.copyfile(boosters / "features_all.json", models_dir / "features_all.json")
        refs = {}
        for model in sorted(boosters.glob(f"{kind}_*.txt")):
            shutil.copyfile(model, models_dir / model.name)
            shutil.copyfile(BENCH / "predictor_booster.py", models_dir / f"{model.stem}.py")
            refs[model.stem] = f"{models_dir / model.stem}.py:predict"
        return refs
    if kind == "ensemble":
        folder = _cached("ensemble", {"boosters": str(boosters), "size": ENSEMBLE_SIZE},
                         lambda out: _write_ensembles(boosters, out))
    elif kind == "big":
        big = _params("big", BIG, quick)
        folder = _cached("big", big, lambda out: _write_big(big, out))
    else:
        raise ValueError(f"unknown portfolio {kind!r}; one of {', '.join(PORTFOLIOS)}")
    return {pkl.stem: str(pkl) for pkl in sorted(folder.glob("*.pkl"))}


def measure_alone(ref: str, live: Path, times: int = ALONE_RUNS) -> dict[str, float]:
    """Load and predict one model in a fresh process that may use every core, `times`
    times: each figure's median."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    runs: list[dict[str, float]] = []
    for _ in range(times):
        out = subprocess.run([PYTHON, str(BENCH / "measure_model.py"), ref, str(live)],
                             env=env, capture_output=True, text=True, check=True, timeout=1800)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def _params(kind: str, full: dict[str, Any], quick: bool) -> dict[str, Any]:
    return {**full, **QUICK.get(kind, {})} if quick else full


def _latest_live(data_dir: Path) -> Path:
    rounds = sorted((data_dir / "rounds" / "8").iterdir(), key=lambda p: int(p.name))
    return rounds[-1] / "v5.3" / "live.parquet"


def _cached(name: str, params: dict[str, Any], make: Any) -> Path:
    """`make(folder)` once per `params`; the folder it filled."""
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    folder = ROOT / ".autopilot" / "bench-portfolios" / f"{name}-{key}"
    done = folder / ".done"
    if not done.exists():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        began = time.monotonic()
        make(folder)
        done.write_text(json.dumps({**params, "built_s": round(time.monotonic() - began, 1)}))
    return folder


def _trained(name: str, params: dict[str, Any], train: Path) -> Path:
    st = train.stat()
    return _cached(name, {**params, "train": f"{st.st_size}-{st.st_mtime_ns}"},
                   lambda out: _train(name, params, train, out))


def _train(name: str, params: dict[str, Any], train_path: Path, out: Path) -> None:
    """`params["count"]` boosters, each its own seed (rows and columns sampled)."""
    import lightgbm
    import pandas as pd

    features: list[str] = json.loads((train_path.parent / "features.json").read_text()
                                     )["feature_sets"]["all"]
    train = pd.read_parquet(train_path)
    target = next(c for c in train.columns if c.startswith("target"))
    train = train[train[target].notna()].iloc[: params["rows"]]
    data = lightgbm.Dataset(train[features].to_numpy(dtype="float32"),
                            train[target].to_numpy(dtype="float32"), free_raw_data=False)
    for i in range(params["count"]):
        booster = lightgbm.train(
            {"objective": "regression", "learning_rate": 0.01, "num_leaves": params["leaves"],
             "colsample_bytree": params["colsample"], "min_data_in_leaf": params["min_leaf"],
             "bagging_fraction": 0.8, "bagging_freq": 1, "seed": i, "verbose": -1,
             "feature_pre_filter": False,
             "num_threads": machine_cores()},
            data, num_boost_round=params["trees"])
        booster.save_model(str(out / f"{name}_{i:02d}.txt" if name == "standard"
                               else out / f"{name}_{i}.txt"))
    (out / "features_all.json").write_text(json.dumps(features))


def _write_ensembles(boosters: Path, out: Path) -> None:
    import cloudpickle
    import lightgbm

    features = json.loads((boosters / "features_all.json").read_text())
    for e in range(ENSEMBLES):
        members = [lightgbm.Booster(model_file=str(boosters / f"standard_{e * ENSEMBLE_SIZE + j:02d}.txt"))
                   for j in range(ENSEMBLE_SIZE)]
        (out / f"ensemble_{e}.pkl").write_bytes(cloudpickle.dumps(_ensemble(members, features)))


def _ensemble(members: list[Any], features: list[str]) -> Any:
    def predict(live_features: Any) -> Any:
        import numpy as np

        matrix = live_features[features].to_numpy(dtype="float32")
        mean = np.mean([m.predict(matrix) for m in members], axis=0)
        return live_features.assign(prediction=mean)["prediction"].rank(pct=True)

    return predict


def _write_big(params: dict[str, Any], out: Path) -> None:
    import cloudpickle

    for i in range(params["count"]):
        with open(out / f"big_{i}.pkl", "wb") as fh:
            cloudpickle.dump(_big(params["weights_bytes"], i), fh, protocol=5)


def _big(size: int, seed: int) -> Any:
    import numpy as np

    weights = np.full(size, seed + 1, dtype=np.uint8)

    def predict(live_features: Any) -> Any:
        column = live_features.columns[seed % 40 + 2]
        return live_features[column].rank(pct=True) * float(weights[-1] > 0)

    return predict
