"""`python -m burst_trace ARGS...`: `autopilot ARGS...` with its bursts traced.

The trace goes to `$AUTOPILOT_BURST_TRACE` (one JSON line per burst; see `burst_trace`).
Run with `bench/` on PYTHONPATH, as `bench/bursts.py --trace` does.
"""

import os
import runpy
from pathlib import Path

from burst_trace import install

install(Path(os.environ["AUTOPILOT_BURST_TRACE"]))
runpy.run_module("numerai_autopilot", run_name="__main__", alter_sys=True)
