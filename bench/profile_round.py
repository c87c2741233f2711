"""Profile one round through the server process with py-spy (server and its workers).

    python bench/profile_round.py [--quick] [--models 20] [--kind light|lgbm] [--out DIR]

Writes speedscope JSON files per process to --out (open them at https://speedscope.app) and
prints the run's stage timings. py-spy must be installed (`pip install py-spy`); it needs
ptrace rights on the server's processes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Sandbox
from scenarios import Server, parse_time, prepare_models

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--kind", choices=("light", "lgbm"), default="light")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "profile")
    args = parser.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    workdir = Path(tempfile.mkdtemp(prefix="autopilot-profile-"))
    data_dir = ROOT / ".autopilot" / f"bench-sandbox-{'quick' if args.quick else 'full'}"
    names = [f"{k}_{i:02d}" for k in ("light", "lgbm") for i in range(args.models)]
    sandbox = Sandbox(data_dir, names, args.quick, workdir / "sandbox.log")
    try:
        models = prepare_models(data_dir, workdir / "models", args.models)[args.kind]
        sandbox.control("POST", "faults", {"bandwidth_bytes_per_s": 20_000_000,
                                           "operations": {"*": {"latency_ms": 50}}})
        server = Server(workdir / "server", sandbox, models)
        try:
            server.register()
            server.wait_final(sandbox.open_round(), len(models))  # warm-up
            args.out.mkdir(parents=True, exist_ok=True)
            pids = [server.proc.pid] + [c.pid for c in server.sampler._root.children(True)]
            spies = [subprocess.Popen([spy, "record", "-p", str(pid), "-r", "200", "-f",
                                       "speedscope", "-o", str(args.out / f"{i}-{pid}.json"),
                                       "--nonblocking", "--idle"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                     for i, pid in enumerate(pids)]
            time.sleep(1.0)
            opened = sandbox.control("POST", "rounds/open", {"tournament": 8})
            runs = server.wait_final(int(opened["number"]), len(models))
            for proc in spies:
                proc.send_signal(2)
            for proc in spies:
                proc.wait(timeout=30)
            start = parse_time(opened["openTime"])
            for run in sorted(runs, key=lambda r: r["updated_at"]):
                stages = server.stages(run["id"])
                cells = " ".join(
                    f"{s['state'][:4]}={parse_time(s['ended_at']) - parse_time(s['started_at']):.3f}"
                    for s in stages if s["ended_at"])
                print(f"{run['model']:<10} +{parse_time(run['updated_at']) - start:6.3f}s "
                      f"{cells} {json.dumps(run['detail'])}")
            server.unregister()
        finally:
            server.stop()
    finally:
        sandbox.close()
    print(f"profiles in {args.out}; files in {workdir}")


if __name__ == "__main__":
    main()
