"""The run ledger: runs, their states and stages, claims under leases, logs.

from numerai_autopilot.ledger import Ledger, NewRun, RunState
ledger = Ledger.from_url("sqlite:///.autopilot/ledger.db")
ledger.migrate()
run, created = ledger.record(NewRun("alpha", model_id, 8, 512, trigger_id, "v5.0",
                                    is_test=False, source="webhook"))
for run in ledger.claim("host:1234", lease_s=60):
    ledger.advance(run.id, RunState.DOWNLOADING, owner="host:1234")
"""

from numerai_autopilot.ledger.ledger import Ledger
from numerai_autopilot.ledger.migrations import LATEST_VERSION
from numerai_autopilot.ledger.states import FINAL_STATES, UNFINISHED_STATES, RunState
from numerai_autopilot.ledger.records import Change, LogLine, NewRun, Run, StageRecord

__all__ = [
    "FINAL_STATES",
    "LATEST_VERSION",
    "UNFINISHED_STATES",
    "Change",
    "Ledger",
    "LogLine",
    "NewRun",
    "Run",
    "RunState",
    "StageRecord",
]
