"""The benchmark's scenarios: rounds through our server, the ack bursts, the baseline.

A round scenario starts our server as a real process (`python -m numerai_autopilot serve`)
for a set of models, registers their webhooks in the sandbox, runs a warm-up round (models
load and stay warm, as on a server that runs every day), then measured rounds: each from the
round's open time to the last submission, both on the sandbox's clock. The ack scenario
fires the webhooks itself, all at once, and times each answer on the client.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from ackburst import Burst, burst, webhook_body
from harness import BENCH, PYTHON, Proc, Sandbox, TreeSampler, wait_http

from numerai_autopilot.config.tokens import webhook_url
from numerai_autopilot.sandbox.settings import DEFAULT_PUBLIC_ID, DEFAULT_SECRET_KEY
from numerai_autopilot.sandbox.testing import free_port

KEYS = (DEFAULT_PUBLIC_ID, DEFAULT_SECRET_KEY)
SECRET = "bench-webhook-secret-at-least-32-bytes-long"
ADMIN_TOKEN = "bench-admin-token-7c41e9a05d2b86f3e1a7"  # the JSON API needs it
ENV = {"NUMERAI_PUBLIC_ID": KEYS[0], "NUMERAI_SECRET_KEY": KEYS[1], "AUTOPILOT_SECRET": SECRET,
       "AUTOPILOT_ADMIN_TOKEN": ADMIN_TOKEN}


def parse_time(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


@dataclass
class RoundResult:
    """Figures of the measured rounds of one server: walls per round (the figure is their
    median), downloads per round (the most seen), overheads of every submitted run."""

    walls_s: list[float]
    downloads: int
    rss_peak_mb: float
    cold_start_s: float
    overhead_ms: list[float] = field(default_factory=list)
    submitted: int = 0  # in the round that submitted the fewest
    runs: list[dict[str, Any]] = field(default_factory=list)
    download_s: float = 0.0  # the live data's download stage, median over the rounds
    upload_s: float = 0.0  # one upload (Numerai's answers), median over the runs
    worker_restarts: int = 0  # workers the nannies started again (a crash, a memory kill)

    @property
    def wall_s(self) -> float:
        return statistics.median(self.walls_s)


class Server:
    """Our server as a real process for `models` (name -> predictor reference)."""

    def __init__(self, workdir: Path, sandbox: Sandbox, models: dict[str, str],
                 scheduler: str | None = None, executor: str | None = None,
                 environments: dict[str, str] | None = None) -> None:
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.sandbox = sandbox
        self.models = models
        if executor is None:  # the [executor] table's lines
            executor = (f'scheduler = "{scheduler}"\n' if scheduler else "workers = 2\n"
                        ) + 'memory_limit = "3GiB"\n'
        self.workdir = workdir
        text = (f'[numerai]\napi_url = "{sandbox.url}"\ntimeout = 30\n'
                f'[server]\nhost = "127.0.0.1"\nport = {self.port}\n'
                f'[ledger]\nurl = "sqlite:///{workdir / "ledger.db"}"\n'
                f'[data]\ncache_dir = "{workdir / "data"}"\n'
                f'[executor]\n{executor}')
        for name, ref in models.items():
            text += (f'\n[models.{name}]\nmodel_id = "{sandbox.models[name]}"\n'
                     f'predictor = "{ref}"\ntimeout = "300s"\n')
            if environments and name in environments:
                text += f'environment = "{environments[name]}"\n'
        for env in sorted(set((environments or {}).values())):
            # nothing of its own: the environment sees the service's packages (envs build)
            (workdir / f"{env}.txt").write_text("# the service's packages only\n")
            text += f'\n[environments.{env}]\nrequirements = "{env}.txt"\n'
        self.config = workdir / "autopilot.toml"
        self.config.write_text(text)
        if environments:
            subprocess.run([PYTHON, "-m", "numerai_autopilot", "envs", "build", "-c",
                            str(self.config)], check=True, capture_output=True,
                           env={**os.environ, **ENV})
        self._start()

    def _start(self) -> None:
        # at its default log level (INFO), as users run it
        self.proc = Proc([PYTHON, "-m", "numerai_autopilot", "serve", "-c", str(self.config)],
                         self.workdir / "server.log", ENV, cwd=self.workdir)
        self.cold_start_s = wait_http(f"{self.url}/healthz", self.proc)
        self.sampler = TreeSampler(self.proc.pid)
        self.http = httpx.Client(timeout=60, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        deadline = time.monotonic() + 120
        while not self.http.get(f"{self.url}/healthz").json()["executor_ready"]:
            self.proc.check()
            if time.monotonic() > deadline:
                raise RuntimeError("executor not ready within 120 s")
            time.sleep(0.05)

    def restart(self) -> None:
        """A new server process (cold: no model loaded) on the same ledger and port."""
        self.stop()
        self._start()

    def hook(self, name: str) -> str:
        return webhook_url(self.url, self.sandbox.models[name], SECRET)

    def register(self) -> None:
        for name in self.models:
            self.sandbox.set_webhook(self.sandbox.models[name], self.hook(name), KEYS)

    def unregister(self) -> None:
        for name in self.models:
            self.sandbox.set_webhook(self.sandbox.models[name], None, KEYS)

    def runs(self, round_number: int) -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = self.http.get(
            f"{self.url}/api/runs", params={"limit": 1000, "round": round_number}).json()
        return runs

    def stages(self, run_id: str) -> list[dict[str, Any]]:
        stages: list[dict[str, Any]] = self.http.get(f"{self.url}/api/runs/{run_id}/stages").json()
        return stages

    def wait_final(self, round_number: int, count: int, timeout: float = 300.0
                   ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        final = {"submitted", "failed", "skipped"}
        while True:
            self.proc.check()
            runs = self.runs(round_number)
            if len(runs) >= count and all(r["state"] in final for r in runs):
                return runs
            if time.monotonic() > deadline:
                states = sorted((r["model"], r["state"]) for r in runs)
                raise RuntimeError(f"round {round_number}: runs not final in time: {states}")
            # each poll costs the server CPU mid-round; the figures come from the sandbox's
            # and the ledger's clocks, not from when this loop notices the end
            time.sleep(0.25)

    def worker_restarts(self) -> int:
        """Workers the local cluster's nannies started again, as its log says."""
        return (self.workdir / "server.log").read_text(errors="replace").count(
            "Restarting worker")

    def stop(self) -> None:
        self.sampler.close()
        self.http.close()
        self.proc.stop()


def overhead_ms(run: dict[str, Any], stages: list[dict[str, Any]]) -> float:
    """Time of the run beyond its predictor's own work, the shared download, waiting for a
    free worker and Numerai's answers to the upload (all recorded in `run.detail`). A model
    that loaded while the data downloaded (`data_wait_s` recorded) counts only the part of
    its wait and load that outlasted the download."""
    detail = run["detail"]
    total = parse_time(run["updated_at"]) - parse_time(run["created_at"])
    download = sum(parse_time(s["ended_at"]) - parse_time(s["started_at"])
                   for s in stages if s["state"] == "downloading" and s["ended_at"])
    before = sum(float(detail.get(k, 0.0)) for k in ("load_s", "queued_s"))
    if detail.get("data_wait_s") is not None:
        before = max(before - download, 0.0)
    own = before + sum(float(detail.get(k, 0.0)) for k in ("compute_s", "upload_s"))
    return (total - download - own) * 1000


def round_scenario(workdir: Path, sandbox: Sandbox, models: dict[str, str],
                   scheduler: str | None = None, warmup: int = 1, executor: str | None = None,
                   rounds: int = 3, environments: dict[str, str] | None = None,
                   restart: bool = False) -> RoundResult:
    """`warmup` warm-up rounds, then `rounds` measured rounds on the same server, each once the
    server is idle again (walls are reported per round; the figure is their median, steadier
    than one round's). The overhead figure pools every run of every measured round.
    `environments`: model name -> an environment built for it (`autopilot envs build`).
    `restart`: a new server process after the warm-up rounds (its models cold, their
    earlier runs in the ledger), as after a restart or on Cloud Run's next instance."""
    server = Server(workdir, sandbox, models, scheduler, executor, environments)
    try:
        server.register()
        for _ in range(warmup):
            warm = sandbox.open_round()
            server.wait_final(warm, len(models))
        if restart:
            server.restart()
        walls: list[float] = []
        downloads: list[int] = []
        submitted: list[int] = []
        overheads: list[float] = []
        runs: list[dict[str, Any]] = []
        downloads_s: list[float] = []
        server.sampler.wait_idle()
        server.sampler.reset()
        for _ in range(rounds):
            opened = sandbox.control("POST", "rounds/open", {"tournament": 8})
            number = int(opened["number"])
            done = server.wait_final(number, len(models))
            subs = sandbox.submissions(number)
            last = max(parse_time(s["inserted_at"]) for s in subs) if subs else float("nan")
            # the webhooks' send times: openTime has whole seconds only
            fired = [parse_time(w["started_at"]) for w in opened.get("webhooks", [])]
            walls.append(last - (min(fired) if fired else parse_time(opened["openTime"])))
            downloads.append(sum(1 for d in sandbox.downloads(number)
                                 if d["filename"].endswith("/live.parquet")))
            submitted.append(sum(1 for r in done if r["state"] == "submitted"))
            stages = {r["id"]: server.stages(r["id"]) for r in done if r["state"] == "submitted"}
            overheads += [overhead_ms(r, stages[r["id"]]) for r in done if r["id"] in stages]
            downloads_s.append(max((parse_time(s["ended_at"]) - parse_time(s["started_at"])
                                    for st in stages.values() for s in st
                                    if s["state"] == "downloading" and s["ended_at"]),
                                   default=0.0))
            runs += done
            server.sampler.wait_idle()
        result = RoundResult(walls_s=walls, downloads=max(downloads),
                             rss_peak_mb=server.sampler.peak_mb(),
                             cold_start_s=server.cold_start_s, overhead_ms=overheads,
                             submitted=min(submitted), runs=runs,
                             download_s=median(downloads_s),
                             upload_s=median([float(r["detail"].get("upload_s", 0.0))
                                              for r in runs if r["state"] == "submitted"]),
                             worker_restarts=server.worker_restarts())
        server.unregister()
        return result
    finally:
        server.stop()


@dataclass
class AckResult:
    """One burst of webhooks and the round it opened."""

    burst: Burst
    wall_s: float  # the burst's round: first webhook sent -> last submission
    downloads: int  # of the round's live data
    submitted: int


def ack_scenario(workdir: Path, sandbox: Sandbox, models: dict[str, str],
                 sizes: list[int]) -> list[AckResult]:
    """One server for `models`; per size, once the server is idle: a new round, and one
    webhook for each of the first `size` models, all at once, each on a new connection; then
    the server finishes the round. Raises RuntimeError if a burst's runs do not all finish."""
    server = Server(workdir, sandbox, models)
    names = list(models)
    results: list[AckResult] = []
    try:
        for _ in range(20):  # a warm server: code paths and connections used once
            server.http.get(f"{server.url}/healthz")
        for size in sizes:
            server.sampler.wait_idle()  # done with its start-up work or the previous round
            number = sandbox.open_round()  # no webhook registered: we fire them ourselves
            fired = time.time()
            with server.sampler.paused():  # no sampling of the server's RSS in the timed burst
                got = burst([(server.hook(name), webhook_body(number, str(uuid.uuid4())))
                             for name in names[:size]])
            runs = server.wait_final(number, size, timeout=1200)
            subs = sandbox.submissions(number)
            last = max(parse_time(s["inserted_at"]) for s in subs) if subs else float("nan")
            results.append(AckResult(
                got, last - fired,
                sum(1 for d in sandbox.downloads(number)
                    if d["filename"].endswith("/live.parquet")),
                sum(1 for r in runs if r["state"] == "submitted")))
        return results
    finally:
        server.stop()


def baseline_scenario(workdir: Path, sandbox: Sandbox, models_dir: Path,
                      models: list[str]) -> float:
    """The Cloud Run template's way: one request per model, one at a time, each held open."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = Proc([PYTHON, "-m", "uvicorn", "baseline_app:app", "--host", "127.0.0.1", "--port",
                 str(port), "--log-level", "warning", "--app-dir", str(BENCH)],
                workdir / "baseline.log",
                {**ENV, "BENCH_API_URL": sandbox.url, "BENCH_MODELS": str(models_dir)},
                cwd=workdir)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc)
        number = sandbox.open_round()
        with httpx.Client(timeout=1200) as http:
            start = time.time()
            for name in models:
                answer = http.post(f"http://127.0.0.1:{port}/pred/{sandbox.models[name]}",
                                   params={"model": name})
                answer.raise_for_status()
            wall = time.time() - start
        got = len(sandbox.submissions(number))
        if got != len(models):
            raise RuntimeError(f"baseline: {got} of {len(models)} submissions arrived")
        return wall
    finally:
        proc.stop()


def prepare_models(sandbox_data: Path, models_dir: Path, count: int) -> dict[str, dict[str, str]]:
    """Per-model predictor files: light_NN.py and lgbm_NN.py (trained once, cached)."""
    models_dir.mkdir(parents=True, exist_ok=True)
    cached = sandbox_data.parent / f"{sandbox_data.name}-lgbm"
    if not (cached / "lgbm_medium.txt").exists():
        _train(sandbox_data, cached)
    for name in ("lgbm_medium.txt", "lgbm_medium.features.json"):
        shutil.copyfile(cached / name, models_dir / name)
    refs: dict[str, dict[str, str]] = {"light": {}, "lgbm": {}}
    for kind, named in refs.items():
        for i in range(count):
            name = f"{kind}_{i:02d}"
            shutil.copyfile(BENCH / f"predictor_{kind}.py", models_dir / f"{name}.py")
            named[name] = f"{models_dir / name}.py:predict"
    return refs


def _train(sandbox_data: Path, out: Path) -> None:
    """LightGBM on the medium feature set of the sandbox's train data."""
    import lightgbm
    import pandas as pd

    static = sandbox_data / "static" / "v5.3"
    features: list[str] = json.loads((static / "features.json").read_text()
                                     )["feature_sets"]["medium"]
    train = pd.read_parquet(static / "train.parquet")
    target = next(c for c in train.columns if c.startswith("target"))
    train = train[train[target].notna()]
    booster = lightgbm.train(
        {"objective": "regression", "learning_rate": 0.05, "num_leaves": 31, "verbose": -1,
         "num_threads": 2, "seed": 0, "colsample_bytree": 0.1},
        lightgbm.Dataset(train[features].to_numpy(dtype="float32"),
                         train[target].to_numpy(dtype="float32")),
        num_boost_round=200)
    out.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(out / "lgbm_medium.txt"))
    (out / "lgbm_medium.features.json").write_text(json.dumps(features))


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
