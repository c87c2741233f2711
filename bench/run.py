"""The benchmark: our server against the seed's Cloud Run template, on a throttled sandbox.

    python3 dev.py bench --json bench/results/latest.json     # Numerai-sized data (~3 min)
    python3 dev.py bench --quick                               # small data, a quick look

The sandbox runs as its own process with downloads limited to 20 MB/s and 50 ms added to
every Numerai call; our server runs as a real process (`python -m numerai_autopilot serve`).
Measured (see docs/performance.md for what each figure means and how it is taken):

- ack_p50_ms / ack_p99_ms: webhook answer time, 200 webhooks at once (client-side), each on
  a new connection; ack_pooled_*: the next round's burst on connections opened beforehand
  (as behind a proxy that keeps its connections to the server open); ack_p99_ms_repeats:
  the p99 of each of three more bursts like the first, on later rounds (the server warm);
- downloads_per_round, wall_1_s, wall_20_s, wall_ratio_20_vs_1, overhead_ms_median (each
  server runs a warm-up round and three measured rounds: walls are their median, the
  overhead pools every run; *_rounds lists each round's wall);
- baseline_wall_20_s, ratio_vs_baseline_20: the template's way (bench/baseline_app.py);
- rss_peak_1_mb, rss_peak_20_mb, rss_ratio_20_vs_1; cold_start_s;
- the same wall figures with LightGBM on the medium feature set (*_lgbm_*);
- wall_20_cluster_s: the 20-model round on an external `dask scheduler` + 2 `dask worker`s.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ackburst import client_floor
from harness import DaskCluster, Sandbox
from scenarios import (
    ack_scenario,
    baseline_scenario,
    median,
    prepare_models,
    round_scenario,
)

ROOT = Path(__file__).resolve().parent.parent
BANDWIDTH = 20_000_000  # bytes per second
LATENCY_MS = 50

TARGETS: dict[str, tuple[str, float]] = {
    "ack_p99_ms": ("<=", 20.0),
    "downloads_per_round": ("<=", 1),
    "wall_ratio_20_vs_1": ("<=", 1.5),
    "overhead_ms_median": ("<=", 100.0),
    "ratio_vs_baseline_20": ("<=", 0.1),
    "rss_ratio_20_vs_1": ("<=", 1.5),
    "cold_start_s": ("<=", 1.5),
}


def _rounded(values: list[float]) -> list[float]:
    return [round(v, 3) for v in values]


def _ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else math.nan


def run(args: argparse.Namespace) -> dict[str, Any]:
    n = args.models
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="autopilot-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    data_dir = ROOT / ".autopilot" / f"bench-sandbox-{'quick' if args.quick else 'full'}"
    names = [f"{k}_{i:02d}" for k in ("light", "lgbm") for i in range(n)]
    names += [f"burst_{i:03d}" for i in range(args.burst)]
    out: dict[str, Any] = {"quick": args.quick, "models": n, "burst": args.burst,
                           "bandwidth_bytes_per_s": BANDWIDTH, "api_latency_ms": LATENCY_MS,
                           "machine": f"{platform.machine()}, {_cpus()} cpus, "
                                      f"python {platform.python_version()}"}
    began = time.monotonic()
    step(f"starting the sandbox (data generated once into {data_dir})")
    sandbox = Sandbox(data_dir, names, args.quick, workdir / "sandbox.log")
    try:
        refs = prepare_models(data_dir, workdir / "models", n)
        sandbox.control("POST", "faults", {"bandwidth_bytes_per_s": BANDWIDTH,
                                           "operations": {"*": {"latency_ms": LATENCY_MS}}})
        light, lgbm = refs["light"], refs["lgbm"]
        first = dict(list(light.items())[:1])

        step("1 light model")
        one = round_scenario(workdir / "light1", sandbox, first)
        step(f"{n} light models")
        many = round_scenario(workdir / f"light{n}", sandbox, light)
        out.update(
            wall_1_s=round(one.wall_s, 3), wall_20_s=round(many.wall_s, 3),
            wall_ratio_20_vs_1=_ratio(many.wall_s, one.wall_s),
            wall_1_s_rounds=_rounded(one.walls_s), wall_20_s_rounds=_rounded(many.walls_s),
            downloads_per_round=many.downloads,
            overhead_ms_median=round(median(many.overhead_ms), 1),
            overhead_ms_median_1=round(median(one.overhead_ms), 1),
            rss_peak_1_mb=round(one.rss_peak_mb), rss_peak_20_mb=round(many.rss_peak_mb),
            rss_ratio_20_vs_1=_ratio(many.rss_peak_mb, one.rss_peak_mb),
            cold_start_s=round(median([one.cold_start_s, many.cold_start_s]), 3),
            submitted_20=many.submitted,
        )
        step(f"{n} light models the Cloud Run template's way (one request at a time)")
        base = baseline_scenario(workdir / "baseline", sandbox, workdir / "models", list(light))
        out.update(baseline_wall_20_s=round(base, 3),
                   ratio_vs_baseline_20=_ratio(many.wall_s, base))

        if not args.skip_lgbm:
            step("1 LightGBM model (medium features)")
            one_l = round_scenario(workdir / "lgbm1", sandbox, dict(list(lgbm.items())[:1]))
            step(f"{n} LightGBM models")
            many_l = round_scenario(workdir / f"lgbm{n}", sandbox, lgbm)
            step(f"{n} LightGBM models the template's way")
            base_l = baseline_scenario(workdir / "baseline-lgbm", sandbox, workdir / "models",
                                       list(lgbm))
            out.update(
                wall_1_lgbm_s=round(one_l.wall_s, 3), wall_20_lgbm_s=round(many_l.wall_s, 3),
                wall_ratio_20_vs_1_lgbm=_ratio(many_l.wall_s, one_l.wall_s),
                downloads_per_round_lgbm=many_l.downloads,
                overhead_ms_median_lgbm=round(median(many_l.overhead_ms), 1),
                rss_peak_1_lgbm_mb=round(one_l.rss_peak_mb),
                rss_peak_20_lgbm_mb=round(many_l.rss_peak_mb),
                rss_ratio_20_vs_1_lgbm=_ratio(many_l.rss_peak_mb, one_l.rss_peak_mb),
                baseline_wall_20_lgbm_s=round(base_l, 3),
                ratio_vs_baseline_20_lgbm=_ratio(many_l.wall_s, base_l),
                submitted_20_lgbm=many_l.submitted,
            )

        step(f"ack burst: {args.burst} webhooks at once")
        burst_models = {f"burst_{i:03d}": light[f"light_{i % n:02d}"] for i in range(args.burst)}
        ack = ack_scenario(workdir / "burst", sandbox, burst_models, repeats=args.ack_repeats)
        floor = client_floor(args.burst)
        floor_pooled = client_floor(args.burst, connected=True)
        out.update(ack_p50_ms=round(ack.p50_ms, 2), ack_p99_ms=round(ack.p99_ms, 2),
                   ack_max_ms=round(ack.max_ms, 2),
                   ack_statuses={str(k): v for k, v in ack.statuses.items()},
                   ack_client_floor_p50_ms=round(floor.p50, 2),
                   ack_client_floor_p99_ms=round(floor.p99, 2),
                   ack_pooled_p50_ms=round(ack.pooled.p50, 2),
                   ack_pooled_p99_ms=round(ack.pooled.p99, 2),
                   ack_pooled_statuses={str(s): ack.pooled.statuses.count(s)
                                        for s in set(ack.pooled.statuses)},
                   ack_client_floor_pooled_p99_ms=round(floor_pooled.p99, 2),
                   ack_p99_ms_repeats=[round(b.p99, 2) for b in ack.repeats],
                   wall_burst_s=round(ack.wall_s, 3), downloads_burst=ack.downloads,
                   submitted_burst=ack.submitted)

        if not args.skip_cluster:
            step(f"{n} light models on an external dask scheduler + 2 dask workers")
            cluster = DaskCluster(workdir / "cluster")
            try:
                on_cluster = round_scenario(workdir / "cluster-server", sandbox, light,
                                            scheduler=cluster.address)
            finally:
                cluster.stop()
            out.update(wall_20_cluster_s=round(on_cluster.wall_s, 3),
                       downloads_per_round_cluster=on_cluster.downloads,
                       submitted_20_cluster=on_cluster.submitted)
    finally:
        sandbox.close()
    out["bench_s"] = round(time.monotonic() - began, 1)
    out["workdir"] = str(workdir)
    return out


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


_T0 = time.monotonic()


def step(message: str) -> None:
    print(f"-- [{time.monotonic() - _T0:6.1f} s] {message}", file=sys.stderr, flush=True)


def table(result: dict[str, Any]) -> str:
    lines = [f"{'figure':<28} {'value':>12}  target", "-" * 52]
    for key, value in result.items():
        if key.endswith("_repeats") and isinstance(value, list) and value:
            lines.append(f"{key:<28} {' / '.join(f'{v:g}' for v in value):>12}")
            continue
        if isinstance(value, dict | list) or key in ("workdir", "machine"):
            continue
        target = TARGETS.get(key)
        mark = ""
        if target is not None and isinstance(value, int | float):
            ok = value <= target[1]
            mark = f"{target[0]} {target[1]:g}  {'ok' if ok else 'MISSED'}"
        shown = f"{value:.3f}".rstrip("0").rstrip(".") if isinstance(value, float) else value
        lines.append(f"{key:<28} {shown!s:>12}  {mark}")
    lines.append(f"machine: {result.get('machine')}; files in {result.get('workdir')}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument("--quick", action="store_true", help="small data (1,000 x 300)")
    parser.add_argument("--models", type=int, default=20, help="models per round (20)")
    parser.add_argument("--burst", type=int, default=200, help="webhooks in the burst (200)")
    parser.add_argument("--ack-repeats", type=int, default=3,
                        help="more bursts after the measured one, each on a new round, on the "
                             "warm server: their p99s show how much the figure moves (3)")
    parser.add_argument("--workdir", type=Path, help="keep the run's files here")
    parser.add_argument("--skip-lgbm", action="store_true")
    parser.add_argument("--skip-cluster", action="store_true")
    args = parser.parse_args()
    result = run(args)
    print(table(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
