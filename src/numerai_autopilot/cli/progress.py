"""Show a run's progress in the terminal: its stages, download progress, and its log lines."""

from __future__ import annotations

import asyncio

from numerai_autopilot.cli.shared import console
from numerai_autopilot.ledger import Ledger, Run, RunState


class DownloadProgress:
    """A RoundData progress callback remembering the latest figures, for the status line."""

    def __init__(self) -> None:
        self.text = ""

    def __call__(self, filename: str, done: int, total: int | None) -> None:
        size = f"{done / 1e6:.1f}/{total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
        self.text = f" ({filename} {size})"


async def follow_run(
    ledger: Ledger,
    run_id: str,
    task: asyncio.Task[Run],
    download: DownloadProgress | None = None,
    poll_s: float = 0.2,
) -> None:
    """Print each log line of `run_id` and keep a status line until `task` finishes."""
    last_log = 0
    with console.status("starting ...") as status:
        while True:
            run = await asyncio.to_thread(ledger.get, run_id)
            if run is not None:
                extra = download.text if download and run.state is RunState.DOWNLOADING else ""
                status.update(f"{run.model_name}: {run.state.value}{extra} ...")
            for line in await asyncio.to_thread(ledger.logs, run_id, after_id=last_log):
                last_log = line.id
                console.print(f"  {line.at:%H:%M:%S} {line.level:<7} {line.message}", soft_wrap=True)
            if task.done():
                return
            await asyncio.wait({task}, timeout=poll_s)
