"""Predictors of the environment tests (loaded by path as `file.py:function`)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pandas as pd


def probe_version(live_features: pd.DataFrame) -> pd.DataFrame:
    """Ranks of the first feature; writes which autopilot_probe and Python it ran with into
    `$PROBE_SEEN_DIR/<version>.json` (autopilot_probe is installed only in environments)."""
    import autopilot_probe

    seen = Path(os.environ["PROBE_SEEN_DIR"]) / f"{autopilot_probe.__version__}.json"
    seen.write_text(json.dumps({"version": autopilot_probe.__version__,
                                "python": sys.executable, "pandas": pd.__version__}))
    return autopilot_probe.Model()(live_features)
