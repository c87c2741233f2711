"""An environment's Dask workers, in a process started from the environment's interpreter.

    <env>/bin/python -c "from numerai_autopilot.executor.env_worker import main; main()" SPEC

SPEC (JSON): the scheduler's address, the environment's name, how many workers, their threads
and memory limit, their local directory, the Dask configuration, the resource they offer
(`environment_resource(name)`, one unit per thread: only that environment's tasks ask for it),
the folders to put first on `sys.path` (where the server finds predictor modules) and the
logging setup. Each worker runs under a nanny, as the local cluster's do, so a worker killed
for a timeout or its memory is replaced, and how it ended reaches the executor (`exits.py`).
Prints one line, `{"workers": N}`, once they have joined the scheduler; closes them when stdin
closes (the server stopped or died) or on SIGTERM. It imports nothing of the server but this
package's worker side, which the environment sees through the server's site-packages
(`autopilot envs build`).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from typing import Any

RESOURCE_PREFIX = "autopilot-env-"
DEFAULT_RESOURCE = RESOURCE_PREFIX + "default"


def environment_resource(name: str | None) -> str:
    """The Dask resource the workers of environment `name` offer (None: the service's own).

    >>> environment_resource("legacy"), environment_resource(None)
    ('autopilot-env-legacy', 'autopilot-env-default')
    """
    return DEFAULT_RESOURCE if name is None else RESOURCE_PREFIX + name


async def _serve(spec: dict[str, Any]) -> None:
    first = [path for path in spec["sys_path"] if path not in sys.path]
    sys.path[:] = first + sys.path  # the nannies' worker processes start with it too
    import copy

    import dask
    import distributed

    from numerai_autopilot.executor.exits import EXIT_TOPIC, report_exits
    from numerai_autopilot.logs import setup_logging

    setup_logging(*spec["logging"])
    nanny: Any = distributed.Nanny  # untyped
    with dask.config.set(spec["config"]):
        nannies = [
            nanny(spec["scheduler"], nthreads=spec["threads"], memory_limit=spec["memory_limit"],
                  resources={spec["resource"]: spec["threads"]},
                  name=f"env-{spec['name']}-{i}", local_directory=spec["local_directory"],
                  dashboard_address=None, config=copy.deepcopy(dask.config.config))
            for i in range(spec["workers"])]
        await asyncio.gather(*nannies)
    report_exits(lambda event: nannies[0].log_event(EXIT_TOPIC, event))  # any: one scheduler
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(json.dumps({"workers": len(nannies)}), flush=True)
    waiting = asyncio.ensure_future(reader.read())  # EOF: the server is gone
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({waiting, stopped}, return_when=asyncio.FIRST_COMPLETED)
    await asyncio.gather(*(n.close() for n in nannies), return_exceptions=True)


def main() -> None:
    """The child process: `python -c "...; main()" SPEC`, SPEC as the module docstring says."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server stops it, as the local cluster
    asyncio.run(_serve(json.loads(sys.argv[1])))
