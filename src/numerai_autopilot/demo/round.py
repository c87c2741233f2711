"""`autopilot demo`: a whole round on this machine, no account and no network needed.

A local Numerai sandbox with synthetic data, the example models (`training.py`), and the real
server on 127.0.0.1 with each model's webhook registered in the sandbox; then a round of each
tournament opens and the sandbox POSTs the webhooks as Numerai does. Everything runs in this
process except the predictors (Dask workers) and the sandbox (a thread); the files it makes
stay in `workdir` for a second look (`autopilot runs -c ...`).

    code = await run_demo(Path(".autopilot/demo"), timeout=300)   # 0: every model submitted
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import time
from pathlib import Path

import httpx
import uvicorn
from rich.console import Console
from rich.live import Live
from rich.table import Table

from numerai_autopilot.config import TOURNAMENT_NAMES, AppConfig, parse_config, webhook_url
from numerai_autopilot.demo.training import prepare_models
from numerai_autopilot.errors import AutopilotError
from numerai_autopilot.ledger import Run, RunState
from numerai_autopilot.numerai import NumeraiClient
from numerai_autopilot.runtime import Runtime
from numerai_autopilot.sandbox import ModelSpec, SandboxSettings
from numerai_autopilot.sandbox.testing import free_port, running_sandbox
from numerai_autopilot.web import create_app
from numerai_autopilot.web.dashboard import new_login_code

console = Console(highlight=False)
# model name -> tournament (Classic 8, Signals 11, Crypto 12)
MODELS = {"demo_lgbm": 8, "demo_upload": 8, "demo_plain": 8, "demo_signals": 11,
          "demo_crypto": 12}


def demo_config(workdir: Path, api_url: str, public_id: str, secret_key: str,
                model_ids: dict[str, str], predictors: dict[str, str], port: int) -> AppConfig:
    """The demo's autopilot.toml, written to `workdir` so a user can read and reuse it."""
    models = "".join(
        f'\n[models.{name}]\nmodel_id = "{model_ids[name]}"\npredictor = "{predictors[name]}"\n'
        f'tournament = "{TOURNAMENT_NAMES[tournament]}"\ntimeout = "120s"\n'
        for name, tournament in MODELS.items()
    )
    text = (
        f'[numerai]\napi_url = "{api_url}"\n\n'
        f'[server]\nhost = "127.0.0.1"\nport = {port}\n\n'
        f'[ledger]\nurl = "sqlite:///{workdir / "ledger.db"}"\n\n'
        f'[data]\ncache_dir = "{workdir / "data"}"\n\n'
        f'[executor]\nworkers = 2\nmemory_limit = "3GiB"\n{models}'
    )
    (workdir / "autopilot.toml").write_text(text)
    env = {"NUMERAI_PUBLIC_ID": public_id, "NUMERAI_SECRET_KEY": secret_key,
           "AUTOPILOT_SECRET": secrets.token_hex(32)}
    return parse_config(text, source=str(workdir / "autopilot.toml"), base_dir=workdir, env=env)


async def run_demo(workdir: Path, *, timeout: float = 300.0, keep_serving: bool = False) -> int:
    """Run the demo's round in `workdir` (its ledger and round data from a previous demo are
    removed first; the sandbox's data and the trained models are kept).

    :param timeout: seconds until the runs still in progress are reported as unfinished.
    :param keep_serving: afterwards, serve the dashboard until interrupted.
    :returns: 0 when every model submitted, else 1.
    :raises AutopilotError: the server did not start.
    """
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    for stale in ("ledger.db", "ledger.db-wal", "ledger.db-shm", "data"):
        path = workdir / stale
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    started = time.monotonic()
    settings = SandboxSettings(
        data_dir=workdir / "sandbox", models=tuple(ModelSpec(n, t) for n, t in MODELS.items())
    )
    console.print("[bold]1.[/] starting the Numerai sandbox (synthetic data, generated once) ...")
    with running_sandbox(settings) as sandbox:
        console.print(f"   sandbox at {sandbox.url}; account models: {', '.join(MODELS)}")
        async with httpx.AsyncClient(timeout=60) as http:
            client = NumeraiClient(http, api_url=sandbox.url, public_id=sandbox.public_id,
                                   secret_key=sandbox.secret_key)
            console.print("[bold]2.[/] preparing example models (Classic: LightGBM, Model Upload "
                          "pickle, function; a Signals and a Crypto model) ...")
            predictors = await prepare_models(client, workdir / "models")
            port = free_port()
            config = demo_config(workdir, sandbox.url, sandbox.public_id, sandbox.secret_key,
                                 dict(sandbox.models), predictors, port)
            console.print(f"[bold]3.[/] starting the server on 127.0.0.1:{port} (config: {config.source})")
            runtime = Runtime(config)
            # No sign-in is configured: the dashboard opens with a one-time link, shown once.
            login_code = new_login_code() if keep_serving else None
            # As `autopilot serve`: no logging configuration of uvicorn's own (the demo's
            # output stays its table), no access log (webhook URLs carry tokens).
            server = uvicorn.Server(uvicorn.Config(
                create_app(config, runtime=runtime, login_code=login_code), host="127.0.0.1",
                port=port, log_config=None, access_log=False))
            serving = asyncio.create_task(server.serve())
            try:
                await _wait_healthy(http, port, runtime)
                base = f"http://127.0.0.1:{port}"
                assert config.server.secret is not None
                for name in MODELS:
                    model_id = sandbox.models[name]
                    url = webhook_url(base, model_id, config.server.secret.get_secret_value())
                    await client.set_submission_webhook(model_id, url)
                console.print(f"   registered {len(MODELS)} webhooks: {base}/pred/<model id>/***")
                console.print("[bold]4.[/] opening a round of Classic, Signals and Crypto: the "
                              "sandbox fires the webhooks ...")
                rounds: dict[int, int] = {}
                for tournament in sorted(set(MODELS.values())):
                    opened = (await http.post(f"{sandbox.url}/_sandbox/rounds/open",
                                              json={"tournament": tournament})).json()
                    rounds[tournament] = int(opened["number"])
                runs = await _watch(runtime, rounds, started + timeout)
                submissions = (await http.get(f"{sandbox.url}/_sandbox/submissions")).json()
                code = _summary(runs, submissions, rounds, time.monotonic() - started)
                console.print(f"The demo's files are in {_shown(workdir)}. Inspect the runs: "
                              f"`{_cli()} runs -c {_shown(workdir / 'autopilot.toml')}`",
                              soft_wrap=True)
                if keep_serving:
                    console.print(f"\ndashboard: sign in at {base}/login?code={login_code} "
                                  f"(works once; sandbox: {sandbox.url}); Ctrl-C to stop",
                                  soft_wrap=True)
                    with contextlib.suppress(asyncio.CancelledError):
                        await asyncio.Event().wait()
            finally:
                server.should_exit = True
                await serving
    return code


async def _wait_healthy(http: httpx.AsyncClient, port: int, runtime: Runtime) -> None:
    for _ in range(600):
        try:
            if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                await runtime.wait_ready()
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.05)
    raise AutopilotError(f"the demo's server did not answer /healthz on port {port} within "
                         "30 s; its log lines above say why")


async def _watch(runtime: Runtime, rounds: dict[int, int], deadline: float) -> list[Run]:
    """Show the opened rounds' runs until all are final; `rounds`: tournament -> number."""
    runs: list[Run] = []
    title = ", ".join(f"{TOURNAMENT_NAMES[t]} round {n}" for t, n in sorted(rounds.items()))
    with Live(console=console, refresh_per_second=8) as live:
        while time.monotonic() < deadline:
            runs = [r for r in await asyncio.to_thread(runtime.ledger.runs, limit=100)
                    if r.round_number == rounds.get(r.tournament)]
            live.update(_table(runs, title))
            if len(runs) >= len(MODELS) and all(r.state.is_final for r in runs):
                break
            await asyncio.sleep(0.25)
    return runs


def _table(runs: list[Run], title: str) -> Table:
    table = Table("model", "tournament", "round", "state", "rows", "compute", "total",
                  "submission id / error", title=title)
    colours = {RunState.SUBMITTED: "green", RunState.FAILED: "red", RunState.SKIPPED: "yellow"}
    for run in sorted(runs, key=lambda r: (r.tournament, r.model_name)):
        total = (run.updated_at - run.created_at).total_seconds()
        table.add_row(
            run.model_name, TOURNAMENT_NAMES.get(run.tournament, str(run.tournament)),
            str(run.round_number), f"[{colours.get(run.state, 'cyan')}]{run.state.value}[/]",
            str(run.detail.get("rows", "")), f"{run.detail.get('compute_s', '')}s",
            f"{total:.2f}s", run.submission_id or run.error or "",
        )
    return table


def _summary(runs: list[Run], submissions: list[dict[str, object]], rounds: dict[int, int],
             elapsed: float) -> int:
    ok = len(runs) == len(MODELS) and all(r.state is RunState.SUBMITTED for r in runs)
    console.print("\n[bold]5.[/] the sandbox's record of submissions (what Numerai received):")
    table = Table("model", "tournament", "round", "rows", "trigger id", "submission id")
    for sub in submissions:
        tournament = sub.get("tournament")
        if isinstance(tournament, int) and sub.get("round_number") == rounds.get(tournament):
            table.add_row(str(sub.get("model_name")), TOURNAMENT_NAMES.get(tournament, str(tournament)),
                          str(sub.get("round_number")), str(sub.get("row_count")),
                          str(sub.get("trigger_id")), str(sub.get("id")))
    console.print(table)
    verdict = "[green]all models submitted[/]" if ok else "[red]some models did not submit[/]"
    console.print(f"{verdict} in {elapsed:.1f} s.")
    return 0 if ok else 1


def _shown(path: Path) -> str:
    """`path` relative to the current folder when inside it, else absolute."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _cli() -> str:
    """How to run the CLI from here: through dev.py in a checkout (the README's way), else
    the installed `autopilot`."""
    return "python3 dev.py autopilot" if Path("dev.py").is_file() else "autopilot"
