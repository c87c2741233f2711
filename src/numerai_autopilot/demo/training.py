"""The demo's example models, the Classic ones trained once on the sandbox's synthetic data.

`demo_lgbm` is LightGBM on the small feature set (a `file.py:function` predictor),
`demo_upload` a Numerai Model Upload style cloudpickle (`predict(live, benchmarks)`),
`demo_plain` a plain function; `demo_signals` and `demo_crypto` give a signal per ticker.

    predictors = await prepare_models(client, Path(".autopilot/demo/models"))
    predictors["demo_plain"]    # "numerai_autopilot.demo.examples.plain:predict"
"""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

from numerai_autopilot.numerai import NumeraiClient

DATA_VERSION = "v5.3"


async def prepare_models(client: NumeraiClient, models_dir: Path) -> dict[str, str]:
    """Train the Classic example models into `models_dir` unless they are there already.

    :param client: a client of the sandbox, which serves the train data.
    :returns: model name -> its predictor reference, as `models.NAME.predictor` takes it.
    :raises NumeraiError: the train data could not be downloaded.
    """
    models_dir.mkdir(parents=True, exist_ok=True)
    lgbm_file = models_dir / "lgbm_small.txt"
    pickle_file = models_dir / "upload_model.pkl"
    if not (lgbm_file.exists() and pickle_file.exists()):
        features_path = models_dir / "features.json"
        train_path = models_dir / "train.parquet"
        await client.download(f"{DATA_VERSION}/features.json", features_path)
        await client.download(f"{DATA_VERSION}/train.parquet", train_path)
        small = json.loads(features_path.read_text())["feature_sets"]["small"]
        _train(train_path, small, models_dir)
        train_path.unlink()
    shutil.copyfile(str(resources.files("numerai_autopilot.demo.examples") / "lgbm.py"),
                    models_dir / "lgbm.py")
    return {
        "demo_lgbm": f"{models_dir / 'lgbm.py'}:predict",
        "demo_upload": str(pickle_file),
        "demo_plain": "numerai_autopilot.demo.examples.plain:predict",
        "demo_signals": "numerai_autopilot.demo.examples.signals:predict",
        "demo_crypto": "numerai_autopilot.demo.examples.crypto:predict",
    }


def _train(train_path: Path, features: list[str], models_dir: Path) -> None:
    import cloudpickle
    import lightgbm
    import numpy as np
    import pandas as pd

    train = pd.read_parquet(train_path)
    target = next(c for c in train.columns if c.startswith("target"))
    train = train[train[target].notna()]
    x = train[features].to_numpy(dtype="float32")
    y = train[target].to_numpy(dtype="float32")

    booster = lightgbm.train(
        {"objective": "regression", "learning_rate": 0.05, "num_leaves": 15, "verbose": -1,
         "num_threads": 1, "seed": 0},
        lightgbm.Dataset(x, y),
        num_boost_round=60,
    )
    booster.save_model(str(models_dir / "lgbm_small.txt"))
    (models_dir / "lgbm_small.features.json").write_text(json.dumps(features))

    # A linear model, pickled the way Numerai's Model Uploads expect: one function.
    design = np.column_stack([x, np.ones(len(x), dtype="float32")])
    weights = np.linalg.lstsq(design, y, rcond=None)[0]
    with (models_dir / "upload_model.pkl").open("wb") as handle:
        cloudpickle.dump(_upload_predict(features, weights), handle)


def _upload_predict(features: list[str], weights: Any) -> Any:
    def predict(live_features: Any, live_benchmark_models: Any) -> Any:
        import numpy as np
        import pandas as pd

        x = live_features[features].to_numpy(dtype="float32")
        linear = pd.Series(np.column_stack([x, np.ones(len(x))]) @ weights, index=live_features.index)
        blend = 0.8 * linear.rank(pct=True)
        bench = live_benchmark_models.reindex(live_features.index).iloc[:, 0]
        blend += 0.2 * bench.rank(pct=True).fillna(0.5)
        return blend.rank(pct=True).to_frame("prediction")

    return predict
