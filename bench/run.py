"""The benchmark: our server against the seed's Cloud Run template, on a throttled sandbox.

    python3 dev.py bench --json bench/results/latest.json     # Numerai-sized data
    python3 dev.py bench --quick                               # small data, a quick look

The sandbox runs as its own process with downloads limited to 20 MB/s and 50 ms added to
every Numerai call; our server runs as a real process (`python -m numerai_autopilot serve`).
Measured (see docs/performance.md for what each figure means and how it is taken):

- ack_p50_ms / ack_p99_ms / ack_max_ms: webhook answer time measured by the client, for a
  burst of 200 webhooks sent at once, each on a new connection (as Numerai sends them);
  ack_1000_p99_ms / ack_1000_max_ms: the same for a burst of 1,000 (every answer within 1 s);
  ack_statuses / ack_1000_statuses count the answers' HTTP statuses; wall_burst_s,
  downloads_burst, submitted_burst(_1000): the rounds those bursts opened, run to the end;
- downloads_per_round, wall_1_s, wall_20_s, wall_ratio_20_vs_1, overhead_ms_median (each
  server runs a warm-up round and three measured rounds: walls are their median, the
  overhead pools every run; *_rounds lists each round's wall);
- baseline_wall_20_s, ratio_vs_baseline_20: the template's way (bench/baseline_app.py);
- rss_peak_1_mb, rss_peak_20_mb, rss_ratio_20_vs_1; cold_start_s;
- the same wall figures with LightGBM on the medium feature set (*_lgbm_*);
- wall_20_cluster_s: the 20-model round on an external `dask scheduler` + 2 `dask worker`s;
- per heavy portfolio P (`--portfolio`, bench/portfolios.py): limit_s_P, wall_s_P,
  limit_ratio_P (wall over the machine's limit), peak_rss_mb_P, submitted_P,
  worker_restarts_P; single_deep_ratio: one deep model alone against its limit;
- health_frame_s, health_ms_median, health_ms_max: prediction health's cost (bench/health.py),
  the round's arrays once, then each model's figures;
- wall_20_envs_s, wall_ratio_envs_vs_one, submitted_20_envs: the 20 light models split over
  two environments of their own ([environments], warm) against all in the service's;
  env_start_s: a cold round of one model in an environment of its own (its workers start
  for it) less the same cold round in the service's environment.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import BENCH, DaskCluster, Sandbox, allow_open_files
from portfolios import NAMES as PORTFOLIO_NAMES
from portfolios import PORTFOLIOS, portfolio_scenario
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
BURST = 200  # webhooks at once: ack_p*_ms
BIG_BURST = 1000  # webhooks at once: ack_1000_*_ms

TARGETS: dict[str, tuple[str, float]] = {
    "ack_p99_ms": ("<=", 250.0),
    "ack_1000_max_ms": ("<=", 1000.0),
    "downloads_per_round": ("<=", 1),
    "wall_ratio_20_vs_1": ("<=", 1.5),
    "overhead_ms_median": ("<=", 100.0),
    "ratio_vs_baseline_20": ("<=", 0.1),
    "rss_ratio_20_vs_1": ("<=", 1.5),
    "cold_start_s": ("<=", 1.5),
    "limit_ratio_standard": ("<=", 1.15),
    "limit_ratio_ensemble": ("<=", 1.15),
    "limit_ratio_deep": ("<=", 1.2),
    "limit_ratio_big": ("<=", 1.3),
    "single_deep_ratio": ("<=", 1.2),
    "worker_restarts_big": ("<=", 0),
    "health_ms_median": ("<=", 100.0),  # "well under a second per model" (issue 27)
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
    names += [f"burst_{i:04d}" for i in range(BIG_BURST)] + PORTFOLIO_NAMES
    out: dict[str, Any] = {"quick": args.quick, "models": n,
                           "bandwidth_bytes_per_s": BANDWIDTH, "api_latency_ms": LATENCY_MS,
                           "machine": f"{platform.machine()}, {_cpus()} cpus, "
                                      f"python {platform.python_version()}"}
    began = time.monotonic()
    allow_open_files(2 * BIG_BURST + 1024)  # the server and the client: a socket per webhook
    step(f"starting the sandbox (data generated once into {data_dir})")
    sandbox = Sandbox(data_dir, names, args.quick, workdir / "sandbox.log")
    try:
        refs = prepare_models(data_dir, workdir / "models", n)
        sandbox.control("POST", "faults", {"bandwidth_bytes_per_s": BANDWIDTH,
                                           "operations": {"*": {"latency_ms": LATENCY_MS}}})
        if not args.portfolios_only:
            step("prediction health: the round's arrays once, then 20 models' figures")
            out.update(_health_figures())
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
            step(f"{n} light models in two environments (half each), built by envs build")
            split = {name: "env_a" if i % 2 == 0 else "env_b" for i, name in enumerate(light)}
            in_envs = round_scenario(workdir / "envs20", sandbox, light, environments=split)
            step("1 light model, cold, in the service's environment and in one of its own")
            cold = round_scenario(workdir / "cold1", sandbox, first, warmup=0, rounds=1)
            cold_env = round_scenario(workdir / "cold1-env", sandbox, first, warmup=0,
                                      rounds=1, environments=dict.fromkeys(first, "env_a"))
            out.update(wall_20_envs_s=round(in_envs.wall_s, 3),
                       wall_ratio_envs_vs_one=_ratio(in_envs.wall_s, many.wall_s),
                       submitted_20_envs=in_envs.submitted,
                       env_start_s=round(cold_env.wall_s - cold.wall_s, 3))
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

            step(f"ack bursts: {BURST}, then {BIG_BURST} webhooks at once")
            burst_models = {f"burst_{i:04d}": light[f"light_{i % n:02d}"] for i in range(BIG_BURST)}
            ack, big = ack_scenario(workdir / "burst", sandbox, burst_models, [BURST, BIG_BURST])
            out.update(ack_p50_ms=round(ack.burst.p50, 2), ack_p99_ms=round(ack.burst.p99, 2),
                       ack_max_ms=round(ack.burst.max, 2), ack_statuses=ack.burst.status_counts(),
                       ack_1000_p99_ms=round(big.burst.p99, 2),
                       ack_1000_max_ms=round(big.burst.max, 2),
                       ack_1000_statuses=big.burst.status_counts(),
                       wall_burst_s=round(ack.wall_s, 3), downloads_burst=ack.downloads,
                       submitted_burst=ack.submitted, submitted_burst_1000=big.submitted)

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
        for kind in args.portfolio:
            step(f"portfolio {kind}: building (cached), {args.repeat} cold round(s), each "
                 "model alone")
            heavy = [portfolio_scenario(kind, workdir / f"portfolio-{kind}-{i}", sandbox,
                                        data_dir, args.quick) for i in range(args.repeat)]
            mid = sorted(heavy, key=lambda h: h.ratio)[len(heavy) // 2]  # the median run
            out.update({f"limit_s_{kind}": round(mid.limit_s, 3),
                        f"wall_s_{kind}": round(mid.wall_s, 3),
                        f"limit_ratio_{kind}": round(mid.ratio, 3),
                        f"limit_ratio_{kind}_runs": [round(h.ratio, 3) for h in heavy],
                        f"peak_rss_mb_{kind}": round(max(h.peak_rss_mb for h in heavy)),
                        f"submitted_{kind}": min(h.submitted for h in heavy),
                        f"worker_restarts_{kind}": max(h.worker_restarts for h in heavy)})
            if kind == "deep":
                step("one deep model alone")
                single = [portfolio_scenario(kind, workdir / f"portfolio-deep-1-{i}", sandbox,
                                             data_dir, args.quick, only=["deep_0"])
                          for i in range(args.repeat)]
                out["single_deep_ratio"] = round(median(h.ratio for h in single), 3)
                out["single_deep_ratio_runs"] = [round(h.ratio, 3) for h in single]
    finally:
        sandbox.close()
    out["bench_s"] = round(time.monotonic() - began, 1)
    out["workdir"] = str(workdir)
    return out


def _health_figures() -> dict[str, Any]:
    """bench/health.py in a process of its own: the figures' cost on Numerai-sized data."""
    done = subprocess.run([sys.executable, str(BENCH / "health.py"), "20"], check=True,
                          capture_output=True, text=True, timeout=600)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return {"health_frame_s": figures["frame_s"], "health_ms_median": figures["health_ms_median"],
            "health_ms_max": figures["health_ms_max"]}


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


_T0 = time.monotonic()


def step(message: str) -> None:
    print(f"-- [{time.monotonic() - _T0:6.1f} s] {message}", file=sys.stderr, flush=True)


def table(result: dict[str, Any]) -> str:
    lines = [f"{'figure':<28} {'value':>12}  target", "-" * 52]
    for key, value in result.items():
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
    parser.add_argument("--portfolio", action="append", choices=(*PORTFOLIOS, "all", "none"),
                        help="heavy portfolios to run (repeatable; all by default)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="cold rounds per portfolio; the figures are the median run's (1)")
    parser.add_argument("--portfolios-only", action="store_true",
                        help="only the heavy portfolios (no light, burst or cluster scenarios)")
    parser.add_argument("--workdir", type=Path, help="keep the run's files here")
    parser.add_argument("--skip-lgbm", action="store_true")
    parser.add_argument("--skip-cluster", action="store_true")
    args = parser.parse_args()
    chosen = args.portfolio or ["all"]
    args.portfolio = [] if "none" in chosen else (
        list(PORTFOLIOS) if "all" in chosen else list(dict.fromkeys(chosen)))
    result = run(args)
    print(table(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
