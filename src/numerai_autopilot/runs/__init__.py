"""Runs, from the ledger's queue to Numerai: dispatching, each run's stages, round data.

    dispatcher = Dispatcher(ledger, pipeline, owner, max_concurrent=8, lease_s=60)
    dispatcher.start()      # claims queued runs; each goes through `Pipeline.execute`

`pipeline` runs one run stage by stage; `rounddata` downloads a round's files once for all of
its runs; `rounds` knows the current round and each run's deadline; `watcher` starts runs
when Numerai's webhook never came; `recorder` batches the ledger writes made together.
"""

from numerai_autopilot.runs.dispatcher import Dispatcher
from numerai_autopilot.runs.pipeline import Pipeline, RunSkipped, Services
from numerai_autopilot.runs.recorder import BatchAdvancer, BatchRecorder
from numerai_autopilot.runs.rounddata import RoundData, RoundDataError, RoundFiles
from numerai_autopilot.runs.rounds import CurrentRounds, RoundClosed
from numerai_autopilot.runs.watcher import RoundWatcher

__all__ = [
    "BatchAdvancer",
    "BatchRecorder",
    "CurrentRounds",
    "Dispatcher",
    "Pipeline",
    "RoundClosed",
    "RoundData",
    "RoundDataError",
    "RoundFiles",
    "RoundWatcher",
    "RunSkipped",
    "Services",
]
