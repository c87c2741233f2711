"""Operating a server from the terminal: register, trigger, status, logs (doctor: cli/doctor.py).

`status`, `logs` and `trigger --wait` talk to a running server's JSON API (local by default,
or `--server https://....run.app`) with the admin token from `server.admin_token` or
`AUTOPILOT_ADMIN_TOKEN`. Without `--server`, when no server answers, `status` and `logs`
read the config's ledger instead and say so on stderr. No command prints a key, a token or
a webhook secret.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import httpx
import typer

from numerai_autopilot.cli.registration import current_secret, redact, registered_webhooks
from numerai_autopilot.cli.remote import (
    LocalRuns,
    LogEntry,
    RemoteServer,
    RunReader,
    RunSummary,
    ServerUnreachable,
)
from numerai_autopilot.cli.shared import (
    DEFAULT_CONFIG,
    ConfigOption,
    JsonOption,
    app,
    console,
    err,
    friendly,
    load,
)
from numerai_autopilot.cli.tables import RunRow, print_runs
from numerai_autopilot.config import AppConfig, ServerSettings, webhook_url
from numerai_autopilot.errors import ConfigError
from numerai_autopilot.ledger import Ledger, RunState
from numerai_autopilot.numerai import NumeraiClient
from numerai_autopilot.runs import ModelIds

ServerOption = Annotated[
    str | None,
    typer.Option("--server", help="The server's URL (default: server.public_url, else this machine)."),
]
EXIT_FAILED = 1
EXIT_TIMEOUT = 124
_POLL_S = 1.0


def _server(settings: ServerSettings, http: httpx.AsyncClient, url: str | None) -> RemoteServer:
    """The server at `url`, else at `server.public_url`, else this machine's on its port."""
    token = settings.admin_token
    return RemoteServer(http, url or settings.public_url or f"http://127.0.0.1:{settings.port}",
                        token.get_secret_value() if token is not None else None)


@asynccontextmanager
async def _reader(config: AppConfig, server_url: str | None
                  ) -> AsyncIterator[tuple[RunReader, dict[str, Any] | None]]:
    """The server's API and its health; without `server_url`, when no server answers, the
    config's ledger (said on stderr) and None."""
    async with httpx.AsyncClient() as http:
        server = _server(config.server, http, server_url)
        try:
            health = await server.health()
        except ServerUnreachable:
            if server_url is not None:
                raise
        else:
            yield server, health
            return
        with Ledger.from_url(config.ledger.url) as ledger:
            ledger.migrate()
            local = LocalRuns(ledger)
            err.print(f"no server answers at {server.base_url}: reading {local.where}",
                      soft_wrap=True, markup=False)
            yield local, None


@app.command()
@friendly
def register(
    config_path: ConfigOption = DEFAULT_CONFIG,
    base_url: Annotated[str | None, typer.Option(help="Where Numerai reaches the server (default: server.public_url).")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the models' webhooks instead.")] = False,
) -> None:
    """Set (or clear) every configured model's webhook on Numerai to its tokenized URL."""
    config = load(config_path)
    url = base_url or config.server.public_url
    if url is None and not clear:
        raise ConfigError(
            f"{config.source}: server.public_url: not set; pass --base-url https://your.host "
            "(the server's public address, e.g. the Cloud Run service URL)"
        )
    asyncio.run(register_webhooks(config, url or "", clear=clear))


async def register_webhooks(config: AppConfig, base_url: str, *, clear: bool) -> None:
    """Register each model's webhook at `base_url` (or clear it), showing what was there before."""
    secret = None if clear else current_secret(config)
    async with httpx.AsyncClient() as http:
        client = NumeraiClient.from_settings(http, config.numerai)
        ids = await ModelIds(config.models, config.source).checked(client)
        before = await registered_webhooks(config.numerai, http)
        if before is None:
            console.print("Numerai does not show the webhooks registered before; "
                          "setting them anyway")
        for name, model_id in ids.items():
            url = None if secret is None else webhook_url(base_url, model_id, secret)
            await client.set_submission_webhook(model_id, url)
            was = "" if before is None else f" (was: {redact(before.get(model_id))})"
            now = "cleared" if url is None else redact(url)
            console.print(f"{name} [{model_id}]: {now}{was}", soft_wrap=True, markup=False)


@app.command()
@friendly
def trigger(
    model: Annotated[str, typer.Argument(help="The model's name in autopilot.toml.")],
    config_path: ConfigOption = DEFAULT_CONFIG,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the run until it is submitted or fails.")] = False,
    timeout: Annotated[float, typer.Option(help="Give up waiting after this many seconds.")] = 900.0,
    server: ServerOption = None,
) -> None:
    """Ask Numerai to fire the model's webhook (a test round); with --wait, follow the run."""
    config = load(config_path)
    config.model(model)
    code = asyncio.run(_trigger(config, model, wait, timeout, server))
    raise typer.Exit(code)


async def _trigger(config: AppConfig, model: str, wait: bool, timeout: float,
                   server_url: str | None) -> int:
    started = time.monotonic()
    async with httpx.AsyncClient() as http:
        client = NumeraiClient.from_settings(http, config.numerai)
        ids = ModelIds(config.models, config.source)
        model_id = (await ids.checked(client, only=model))[model]
        trigger_id = await client.trigger_model_webhook(model_id, deadline=time.time() + timeout)
        console.print(f"{model}: Numerai fired the webhook (trigger id {trigger_id})")
        if not wait:
            return 0
        server = _server(config.server, http, server_url)
        seen: list[RunSummary] = []
        try:
            async with asyncio.timeout(max(timeout - (time.monotonic() - started), 0.0)):
                run = await _follow_trigger(server, model_id, trigger_id, seen)
        except TimeoutError:
            if seen:
                err.print(f"{model}: timed out after {timeout:g} s: run {seen[-1].id} is still "
                          f"{seen[-1].state}; follow it with `autopilot logs {seen[-1].id} "
                          "--follow`", soft_wrap=True)
            else:
                err.print(f"{model}: timed out after {timeout:g} s: no run for trigger "
                          f"{trigger_id} at {server.base_url}; is the webhook registered there "
                          "(`autopilot doctor`, `autopilot register`)?", soft_wrap=True)
            return EXIT_TIMEOUT
        if run.state is RunState.SUBMITTED:
            found = [s for s in await client.submissions(model_id) if s.trigger_id == trigger_id]
            if found:
                console.print(f"{model}: ok, submission {found[0].id} carries trigger {trigger_id}")
                return 0
            err.print(f"{model}: the server says submitted ({run.submission_id}) but Numerai "
                      f"lists no submission with trigger {trigger_id}")
            return EXIT_FAILED
        if run.state is RunState.FAILED:
            stage = await server.failing_stage(run.id)
            err.print(f"{model}: failed at {stage}: {run.error}", soft_wrap=True, markup=False)
        else:
            err.print(f"{model}: {run.state}: {run.error}", soft_wrap=True, markup=False)
        return EXIT_FAILED


async def _follow_trigger(server: RemoteServer, model_id: str, trigger_id: str,
                          seen: list[RunSummary]) -> RunSummary:
    """Poll until the trigger's run exists and is final (the caller bounds the time)."""
    last_state, last_log = "", 0
    while True:
        if not seen:
            found = await server.runs(model_id=model_id, trigger_id=trigger_id)
            seen.extend(found[:1])
        else:
            seen[:] = [await server.run(seen[-1].id)]
        if seen:
            run = seen[-1]
            if run.state != last_state:
                last_state = run.state
                console.print(f"  run {run.id}: {run.state}")
            for line in await server.logs(run.id, after=last_log):
                last_log = line.id
                _print_log(line, indent="    ")
            if run.state.is_final:
                return run
        await asyncio.sleep(_POLL_S)


@app.command()
@friendly
def status(
    config_path: ConfigOption = DEFAULT_CONFIG,
    server: ServerOption = None,
    rounds: Annotated[int, typer.Option(help="How many recent rounds.")] = 3,
    as_json: JsonOption = False,
) -> None:
    """The server's health and each model's latest run of recent rounds (else the ledger's).

    Without a server answering, it reads the local ledger and says so; dry runs are left
    out (they are no round's run)."""
    config = load(config_path)
    asyncio.run(_status(config, server, rounds, as_json))


async def _status(config: AppConfig, server_url: str | None, rounds: int, as_json: bool) -> None:
    async with _reader(config, server_url) as (server, health):
        runs = await server.runs(limit=500)
    if not as_json and health is not None:
        ready = "ready" if health.get("executor_ready") else "starting"
        console.print(f"server {server.where}: {health.get('status')}, executor {ready}, "
                      f"{health.get('active_runs', 0)} active runs", soft_wrap=True)
    by_round: dict[tuple[int, int | None], dict[str, RunSummary]] = defaultdict(dict)
    for run in runs:  # newest first: the first run seen per (round, model) is its latest
        if run.state is RunState.DRY_RUN:  # no round's run: it would hide the round's own
            continue
        key = (run.tournament, None if run.is_test else run.round)
        by_round[key].setdefault(run.model, run)
    rows: list[RunRow] = []
    for (tournament, number), seen in list(by_round.items())[:rounds]:
        names = {n for n, m in config.models.items() if m.tournament_id == tournament}
        for name in sorted(set(seen) | names):
            latest = seen.get(name)
            rows.append(RunRow(id="", model=name, tournament=tournament, round=number,
                               is_test=number is None, state="no run") if latest is None else
                        RunRow(id=latest.id, model=name, tournament=tournament, round=number,
                               is_test=latest.is_test, state=latest.state.value,
                               outcome=latest.submission_id or latest.error or ""))
    print_runs(rows, as_json=as_json)


@app.command()
@friendly
def logs(
    run_id: Annotated[str, typer.Argument(help="The run's id, or its start as `autopilot runs` shows it.")],
    config_path: ConfigOption = DEFAULT_CONFIG,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing until the run is final.")] = False,
    server: ServerOption = None,
    timeout: Annotated[float, typer.Option(help="Stop following after this many seconds.")] = 3600.0,
) -> None:
    """The log lines of one run (from the server, else from the local ledger)."""
    config = load(config_path)
    raise typer.Exit(asyncio.run(_logs(config, run_id, follow, server, timeout)))


async def _logs(config: AppConfig, run_id: str, follow: bool, server_url: str | None,
                timeout: float) -> int:
    async with _reader(config, server_url) as (server, _):
        run = await server.run(run_id)
        run_id = run.id  # the whole id, when given its start
        last = 0
        try:
            async with asyncio.timeout(timeout):
                while True:
                    for line in await server.logs(run_id, after=last):
                        last = line.id
                        _print_log(line)
                    if not follow or run.state.is_final:
                        break
                    await asyncio.sleep(_POLL_S)
                    run = await server.run(run_id)
        except TimeoutError:
            err.print(f"run {run_id} is still {run.state} after {timeout:g} s")
            return EXIT_TIMEOUT
        if follow:
            outcome = run.submission_id or run.error or ""
            console.print(f"run {run_id}: {run.state}" + (f" ({outcome})" if outcome else ""),
                          soft_wrap=True, markup=False)
        return EXIT_FAILED if follow and run.state is RunState.FAILED else 0


def _print_log(line: LogEntry, indent: str = "") -> None:
    console.print(f"{indent}{line.at:%H:%M:%S} {line.level:<7} {line.message}",
                  soft_wrap=True, markup=False)


@app.command()
@friendly
def doctor(
    config_path: ConfigOption = DEFAULT_CONFIG,
    base_url: Annotated[str | None, typer.Option(help="Where the webhooks should point (default: server.public_url).")] = None,
) -> None:
    """Check everything a round needs; one line each, ok or what to fix."""
    from numerai_autopilot.cli.doctor import Doctor

    try:
        config = load(config_path)
    except ConfigError as exc:
        console.print(f"[red]FAIL[/] config: {exc}", soft_wrap=True)
        raise typer.Exit(EXIT_FAILED) from None
    report = Doctor(config, base_url or config.server.public_url)
    asyncio.run(report.run())
    raise typer.Exit(0 if report.ok else EXIT_FAILED)
