"""Show a run's progress in the terminal: its stages as they change, and its log lines."""

from __future__ import annotations

import asyncio

from numerai_autopilot.cli.main import console
from numerai_autopilot.ledger import Ledger, Run, RunState


async def follow_run(ledger: Ledger, run_id: str, task: asyncio.Task[Run], poll_s: float = 0.2) -> None:
    """Print each state change and log line of `run_id` until `task` finishes."""
    last_state: RunState | None = None
    last_log = 0
    with console.status("starting ...") as status:
        while True:
            run = await asyncio.to_thread(ledger.get, run_id)
            if run is not None and run.state is not last_state:
                last_state = run.state
                status.update(f"{run.model_name}: {run.state.value} ...")
            for line in await asyncio.to_thread(ledger.logs, run_id, after_id=last_log):
                last_log = line.id
                console.print(f"  {line.at:%H:%M:%S} {line.level:<7} {line.message}", soft_wrap=True)
            if task.done():
                return
            await asyncio.wait({task}, timeout=poll_s)
