"""Metrics tests use the dashboard tests' server harness."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "dashboard"))  # app_harness
