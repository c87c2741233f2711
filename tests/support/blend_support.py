"""Helpers of the blend tests: a sandbox account that also has blend models, member
predictors, and a blend computed independently (scipy's ranks, numpy's weighted average)
from the members' own submission files."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from numerai_autopilot.sandbox.settings import ModelSpec, SandboxSettings
from numerai_autopilot.sandbox.testing import RunningSandbox, running_sandbox

BLEND_MODELS = ("ens", "ens2")  # Classic models of the account, besides the test account's
PREDICTORS = Path(__file__).with_name("blend_predictors.py")


def member(function: str) -> str:
    """A `file.py:function` reference into blend_predictors.py."""
    return f"{PREDICTORS}:{function}"


@contextmanager
def blend_sandbox(settings: SandboxSettings) -> Iterator[RunningSandbox]:
    """The sandbox of `settings` with the Classic models `BLEND_MODELS` added to its account."""
    extra = tuple(ModelSpec(name) for name in BLEND_MODELS)
    with running_sandbox(dataclasses.replace(settings, models=(*settings.models, *extra))) as running:
        yield running


def read_submission(path: Path) -> pd.Series:
    """A submission CSV (`id,prediction`) as predictions by id."""
    frame = pd.read_csv(path, dtype={"id": str})
    return pd.Series(frame["prediction"].to_numpy(), index=frame["id"])


def uploaded(sandbox: RunningSandbox, submission: Mapping[str, Any]) -> pd.Series:
    """The file the sandbox received for `submission`, as predictions by id."""
    return read_submission(sandbox.settings.data_dir / "uploads" / str(submission["filename"]))


def expected_blend(members: Mapping[str, pd.Series], weights: Mapping[str, float]) -> pd.Series:
    """The weighted average of each member's centred percentile ranks, (rank - 0.5) / n with
    ties averaged, over the ids every member has."""
    ids = sorted(set.intersection(*(set(s.index) for s in members.values())))
    total = np.zeros(len(ids))
    for name, weight in weights.items():
        values = members[name].reindex(ids).to_numpy(dtype="float64")
        total += weight * (rankdata(values, method="average") - 0.5) / len(values)
    return pd.Series(total / sum(weights.values()), index=ids)
