"""What a webhook may cost the server for 200 at once to be answered within the target.

    .venv/bin/python bench/ack_ceiling.py [--costs 0,60,110] [--processes 1,2] [--bursts 5]

The benchmark's burst (`ackburst.burst`: 200 requests at once, each on a new connection)
against a bare uvloop + httptools responder that spends COST microseconds of Python on each
request before answering, in one process or in several sharing the port (SO_REUSEPORT).
It separates what the client and the kernel cost from what each microsecond of the server's
own work per webhook adds, on this machine, with the client on the same cores.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from ackburst import RESPONDER, burst, webhook_body
from harness import PYTHON, free_port


def p99s(cost_us: float, processes: int, bursts: int, size: int) -> list[float]:
    """p99 (ms) of each burst against `processes` responders spending `cost_us` a request."""
    port = free_port()
    procs = [subprocess.Popen([PYTHON, "-c", RESPONDER, str(port), str(cost_us)],
                              stdout=subprocess.PIPE) for _ in range(processes)]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        url = f"http://127.0.0.1:{port}/pred/x?token=t"
        return [burst([(url, webhook_body(1, "ceiling"))] * size).p99 for _ in range(bursts)]
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--costs", default="0,60,110", help="µs of work per request")
    parser.add_argument("--processes", default="1,2", help="responder processes on the port")
    parser.add_argument("--bursts", type=int, default=5)
    parser.add_argument("--size", type=int, default=200, help="requests per burst")
    args = parser.parse_args()
    print(f"{'µs/request':>10} {'processes':>9}  p99 of each burst (ms), sorted")
    for cost in (float(c) for c in args.costs.split(",")):
        for processes in (int(p) for p in args.processes.split(",")):
            got = sorted(p99s(cost, processes, args.bursts, args.size))
            print(f"{cost:>10g} {processes:>9}  " + " ".join(f"{p:5.1f}" for p in got))
    return 0


if __name__ == "__main__":
    sys.exit(main())
