"""Helpers shared by the ledger tests (a uniquely named module: conftest is not importable)."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

from numerai_autopilot.ledger import NewRun

WORKER = Path(__file__).with_name("ledger_worker.py")


def new_run(**overrides: object) -> NewRun:
    """A webhook-style NewRun for model 'alpha', round 512; keywords override fields."""
    fields: dict[str, object] = {
        "model_name": "alpha",
        "model_id": "model-alpha",
        "tournament": 8,
        "round_number": 512,
        "trigger_id": f"trigger-{uuid.uuid4().hex[:8]}",
        "data_version": "v5.0",
        "is_test": False,
        "source": "webhook",
    }
    fields.update(overrides)
    return NewRun(**fields)  # type: ignore[arg-type]


def run_workers(url: str, mode: str, count: int, *args: str) -> list[str]:
    """Start ``count`` processes of ledger_worker.py together; return their stdout lines."""
    start_at = str(time.time() + 1.5)  # after every interpreter has imported SQLAlchemy
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), mode, url, start_at, f"proc{i}", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(count)
    ]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, f"worker failed: {err}"
        outputs.append(out.strip())
    return outputs
