"""The ack burst alone, repeated: for working on the webhook path (`bench/run.py` times it once).

    .venv/bin/python bench/bursts.py --bursts 8
    .venv/bin/python bench/bursts.py --compare /path/to/other/checkout/src
    .venv/bin/python bench/bursts.py --trace      # and where each burst goes in the server

One sandbox (quick data, no added latency or bandwidth limit: only our answer is timed) and
one server per code tree; each burst is a new round's 200 webhooks on new connections, then
the server is left to finish the round and go idle. With `--compare`, servers of both trees
take turns (A, B, A, B ...) so that a slow spell of the machine falls on both. Prints every
burst's p50/p99 and the median of each, and the client floor (a bare responder). With
`--trace`, the servers run under `bench/burst_trace`, which times each burst's phases inside
the server (accepting, reading, gathering, recording, answering); the medians are printed.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from ackburst import burst, client_floor, webhook_body
from harness import BENCH, Sandbox
from scenarios import Server, prepare_models


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bursts", type=int, default=6, help="bursts per server (6)")
    parser.add_argument("--size", type=int, default=200, help="webhooks per burst (200)")
    parser.add_argument("--compare", type=Path, action="append", default=[],
                        help="another tree's src/ directory, run in turns with this one")
    parser.add_argument("--pooled", action="store_true",
                        help="on connections opened before the burst")
    parser.add_argument("--py-spy", type=Path, metavar="DIR",
                        help="record each burst of this tree's server with py-spy (--gil, "
                             "raw stacks) into DIR")
    parser.add_argument("--trace", action="store_true",
                        help="time each burst's phases inside the servers (bench/burst_trace)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="autopilot-bursts-"))
    data_dir = BENCH.parent / ".autopilot" / "bench-sandbox-quick"
    names = [f"burst_{i:03d}" for i in range(args.size)]
    sandbox = Sandbox(data_dir, names, True, workdir / "sandbox.log")
    trees: list[Path | None] = [None, *args.compare]
    figures: dict[int, list[tuple[float, float]]] = {i: [] for i in range(len(trees))}
    try:
        refs = prepare_models(data_dir, workdir / "models", 1)["light"]
        models = dict.fromkeys(names, next(iter(refs.values())))
        traces = [workdir / f"trace{i}.jsonl" if args.trace else None for i in range(len(trees))]
        servers = [Server(workdir / f"server{i}", sandbox, models,
                          extra_env={"PYTHONPATH": str(tree)} if tree else None, trace=traces[i])
                   for i, tree in enumerate(trees)]
        try:
            for server in servers:
                for _ in range(20):
                    server.http.get(f"{server.url}/healthz")
                server.sampler.wait_idle()
            for k in range(args.bursts):
                for i, server in enumerate(servers):
                    number = sandbox.open_round()
                    spy = _spy(args.py_spy, server, k) if args.py_spy and i == 0 else None
                    with server.sampler.paused():
                        got = burst([(server.hook(name), webhook_body(number, str(uuid.uuid4())))
                                     for name in names], connected=args.pooled)
                    if spy is not None:  # at once: the runs start once the burst is answered
                        spy.send_signal(signal.SIGINT)
                        spy.wait(timeout=60)
                    if set(got.statuses) != {200}:
                        raise RuntimeError(f"burst {k}: statuses {sorted(set(got.statuses))}")
                    server.wait_final(number, len(names), timeout=600)
                    server.sampler.wait_idle()
                    figures[i].append((got.p50, got.p99))
                    print(f"burst {k} {trees[i] or 'this tree'}: p50 {got.p50:.1f} ms, "
                          f"p99 {got.p99:.1f} ms", flush=True)
        finally:
            for server in servers:
                server.stop()
    finally:
        sandbox.close()
    floor = client_floor(args.size, connected=args.pooled)
    for i, tree in enumerate(trees):
        p50s, p99s = zip(*figures[i], strict=True)
        print(f"{tree or 'this tree'}: median p50 {statistics.median(p50s):.1f} ms, "
              f"median p99 {statistics.median(p99s):.1f} ms, best p99 {min(p99s):.1f} ms")
    print(f"client floor: p50 {floor.p50:.1f} ms, p99 {floor.p99:.1f} ms")
    for tree, trace in zip(trees, traces, strict=True):
        if trace is not None:
            print(f"{tree or 'this tree'}, inside the server (median of the bursts):")
            print(_phases(trace))
    return 0


def _phases(trace: Path) -> str:
    """The median of each figure of the traced bursts (`burst_trace`), one per line."""
    if not trace.exists():
        return "  no burst traced"
    bursts = [json.loads(line) for line in trace.read_text().splitlines() if line.strip()]
    lines = [f"  bursts traced: {len(bursts)}"]
    for key in bursts[0]:
        values = [b[key] for b in bursts if isinstance(b.get(key), int | float)]
        if values:
            lines.append(f"  {key:22s} {statistics.median(values):9.2f}   "
                         f"({min(values):.2f} - {max(values):.2f})")
    threads: dict[str, list[float]] = {}  # other threads that ran before the write, by name
    for b in bursts:
        for name, ms in b.get("other_threads_ms", {}).items():
            threads.setdefault(name, []).append(ms)
    for name, spent in sorted(threads.items(), key=lambda item: -sum(item[1])):
        lines.append(f"  thread {name!r} ran in {len(spent)} of {len(bursts)} bursts before "
                     f"the write: {statistics.median(spent):.2f} ms ({max(spent):.2f} at most)")
    return "\n".join(lines)


def _spy(out: Path, server: Server, k: int) -> subprocess.Popen[bytes]:
    out.mkdir(parents=True, exist_ok=True)
    spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--gil",
                            "--format", "raw", "--rate", "2000", "--nonblocking", "--pid",
                            str(server.proc.pid), "-o", str(out / f"burst{k}.txt")],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # attached
    return spy


if __name__ == "__main__":
    sys.exit(main())
