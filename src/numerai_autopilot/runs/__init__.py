"""Runs, from the ledger's queue to Numerai: dispatching, each run's stages, round data.

    dispatcher = Dispatcher(ledger, pipeline, owner, max_concurrent=8, lease_s=60)
    dispatcher.start()      # claims queued runs; each goes through `Pipeline.execute`

`pipeline` runs one run stage by stage; `rounddata` downloads a round's files once for all of
its runs; `rounds` is the process's one cache of current rounds and says each run's
deadline; `model_ids` resolves model names to ids and builds the run recorded for a model;
`watcher` starts runs when Numerai's webhook never came; `recorder` batches the ledger
writes made together; `recovery` records, at start, the submissions Numerai has that the
ledger lacks; `keepbusy` holds a request to the server itself while runs are unfinished.
"""

from numerai_autopilot.runs.dispatcher import Dispatcher
from numerai_autopilot.runs.fallback import is_benchmark
from numerai_autopilot.runs.keepbusy import KeepBusy, keep_busy_token, keep_busy_url
from numerai_autopilot.runs.model_ids import ModelIds, new_run
from numerai_autopilot.runs.pipeline import Pipeline
from numerai_autopilot.runs.recorder import BatchAdvancer, BatchRecorder
from numerai_autopilot.runs.recovery import recover_submissions
from numerai_autopilot.runs.rounddata import Progress, RoundData, RoundDataError, RoundFiles
from numerai_autopilot.runs.rounddata import warm_up as warm_up_round_data
from numerai_autopilot.runs.rounds import CurrentRounds, RoundClosed
from numerai_autopilot.runs.services import RunSkipped, Services, fallback_key
from numerai_autopilot.runs.watcher import RoundWatcher

__all__ = [
    "BatchAdvancer",
    "BatchRecorder",
    "CurrentRounds",
    "Dispatcher",
    "KeepBusy",
    "ModelIds",
    "Pipeline",
    "Progress",
    "RoundClosed",
    "RoundData",
    "RoundDataError",
    "RoundFiles",
    "RoundWatcher",
    "RunSkipped",
    "Services",
    "fallback_key",
    "is_benchmark",
    "keep_busy_token",
    "keep_busy_url",
    "new_run",
    "recover_submissions",
    "warm_up_round_data",
]
