"""The run ledger: runs, their states and stages, claims under leases, logs.

    from numerai_autopilot.ledger import Ledger, NewRun, RunState
    ledger = Ledger.from_url("sqlite:///.autopilot/ledger.db")
    ledger.migrate()
    run, created = ledger.record(NewRun("alpha", model_id, 8, 512, trigger_id, "v5.0",
                                        is_test=False, source="webhook"))
    for run in ledger.claim("host:1234", lease_s=60):
        ledger.advance(run.id, RunState.DOWNLOADING, owner="host:1234")

Every state change goes through `Ledger.advance` (or `advance_many`), committed before it
returns; every failure is a LedgerError (numerai_autopilot.errors) saying what and why.
"""

from numerai_autopilot.ledger._changes import PREDICTIONS_MEMORY
from numerai_autopilot.ledger._rows import MAX_LOG_MESSAGE
from numerai_autopilot.ledger.ledger import ALERT_MEMORY, Ledger
from numerai_autopilot.ledger.migrations import LATEST_VERSION
from numerai_autopilot.ledger.records import (
    Change,
    LogLine,
    NewRun,
    Run,
    RunSource,
    StageRecord,
    is_own_trigger_id,
    own_trigger_id,
    utcnow,
)
from numerai_autopilot.ledger.states import (
    FINAL_STATES,
    PIPELINE,
    UNFINISHED_STATES,
    RunState,
    can_transition,
    transition_hint,
)

__all__ = [
    "ALERT_MEMORY",
    "FINAL_STATES",
    "LATEST_VERSION",
    "MAX_LOG_MESSAGE",
    "PIPELINE",
    "PREDICTIONS_MEMORY",
    "UNFINISHED_STATES",
    "Change",
    "Ledger",
    "LogLine",
    "NewRun",
    "Run",
    "RunSource",
    "RunState",
    "StageRecord",
    "can_transition",
    "is_own_trigger_id",
    "own_trigger_id",
    "transition_hint",
    "utcnow",
]
