"""Commands that work on this machine's config and ledger: init, run, runs, webhook-url."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Annotated

import httpx
import typer

from numerai_autopilot.cli.registration import current_secret
from numerai_autopilot.cli.shared import (
    DEFAULT_CONFIG,
    ConfigOption,
    JsonOption,
    app,
    console,
    friendly,
    load,
)
from numerai_autopilot.cli.tables import RunRow, print_runs
from numerai_autopilot.config import AppConfig, webhook_url
from numerai_autopilot.errors import ConfigError
from numerai_autopilot.ledger import Ledger, LogLine, Run, RunState, StageRecord
from numerai_autopilot.numerai import NumeraiClient
from numerai_autopilot.observe import setup_logging
from numerai_autopilot.runs import ModelIds, new_run


@app.command()
@friendly
def init(
    directory: Annotated[Path, typer.Argument(help="Where to write the files.")] = Path("."),
    force: Annotated[bool, typer.Option(help="Overwrite existing files.")] = False,
) -> None:
    """Write an autopilot.toml and an example predictor to edit."""
    import secrets

    targets = {
        directory / "autopilot.toml": _example("autopilot.toml").replace(
            "CHANGE-ME", secrets.token_hex(32)
        ),
        directory / "predictors" / "example.py": _example("example_predictor.py"),
    }
    for path, text in targets.items():
        if path.exists() and not force:
            raise ConfigError(f"{path} exists; pass --force to overwrite it")
    for path, text in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        console.print(f"wrote {path}")
    console.print(
        "next: put your model ids (or names) in autopilot.toml, export NUMERAI_PUBLIC_ID and "
        "NUMERAI_SECRET_KEY, then `autopilot run MODEL --dry-run`"
    )


def _example(name: str) -> str:
    return (resources.files("numerai_autopilot.demo.examples") / name).read_text()


@app.command()
@friendly
def run(
    model: Annotated[str, typer.Argument(help="The model's name in autopilot.toml.")],
    config_path: ConfigOption = DEFAULT_CONFIG,
    round_number: Annotated[int | None, typer.Option("--round", help="Round (default: current).")] = None,
    dry_run: Annotated[bool, typer.Option(help="Write the validated CSV instead of uploading.")] = False,
    out: Annotated[Path, typer.Option(help="Where --dry-run writes CSVs.")] = Path("predictions"),
    as_json: JsonOption = False,
) -> None:
    """Run one model now, without a webhook."""
    setup_logging("WARNING")
    # the run's own lines are printed from the ledger below, once: not their log copies
    logging.getLogger().handlers[0].addFilter(lambda record: not hasattr(record, "run"))
    config = load(config_path)
    config.model(model)
    final = asyncio.run(_run_now(config, model, round_number, out if dry_run else None))
    _print_runs(Ledger.from_url(config.ledger.url), [final], as_json=as_json)
    if final.state is RunState.FAILED:
        raise typer.Exit(1)


async def _run_now(
    config: AppConfig, name: str, round_number: int | None, dry_dir: Path | None
) -> Run:
    from numerai_autopilot.runtime import Runtime

    model = config.model(name)
    download = DownloadProgress()
    async with Runtime(config, dry_run_dir=dry_dir, dispatch=False, progress=download) as runtime:
        await runtime.wait_ready()
        await runtime.model_ids.resolve(runtime.client, deadline=time.time() + 60)
        if round_number is None:
            info = await runtime.rounds.get(model.tournament_id, wait=120)
            round_number = info.number
        run, _ = await asyncio.to_thread(
            runtime.ledger.record,
            new_run(model, runtime.model_ids.id_of(name), source="manual",
                    round_number=round_number, resubmit=model.resubmit or dry_dir is not None),
        )
        claimed = await asyncio.to_thread(runtime.ledger.claim_run, run.id, runtime.owner)
        if claimed is None:
            return run  # recorded as skipped (already submitted this round)
        task = asyncio.create_task(runtime.pipeline.execute(claimed))
        await _follow_run(runtime.ledger, run.id, task, download)
        return await task


class DownloadProgress:
    """A RoundData progress callback remembering the latest figures, for the status line."""

    def __init__(self) -> None:
        self.text = ""

    def __call__(self, filename: str, done: int, total: int | None) -> None:
        size = f"{done / 1e6:.1f}/{total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
        self.text = f" ({filename} {size})"


async def _follow_run(ledger: Ledger, run_id: str, task: asyncio.Task[Run],
                      download: DownloadProgress) -> None:
    """Print each log line of `run_id` and keep a status line until `task` finishes; the
    line that says why the run failed is left to the table's error line."""
    last_log = 0
    held: list[LogLine] = []  # error lines: the run's own error is printed under the table
    with console.status("starting ...") as status:
        while True:
            run = await asyncio.to_thread(ledger.get, run_id)
            if run is not None:
                extra = download.text if run.state is RunState.DOWNLOADING else ""
                status.update(f"{run.model_name}: {run.state.value}{extra} ...")
            for line in await asyncio.to_thread(ledger.logs, run_id, after_id=last_log):
                last_log = line.id
                if line.level == "error":
                    held.append(line)
                else:
                    _print_line(line)
            if task.done():
                break
            await asyncio.wait({task}, timeout=0.2)
    final = await asyncio.to_thread(ledger.get, run_id)
    for line in held:
        if final is None or line.message != final.error:
            _print_line(line)


def _print_line(line: LogLine) -> None:
    console.print(f"  {line.at:%H:%M:%S} {line.level:<7} {line.message}",
                  soft_wrap=True, markup=False, highlight=False)


@app.command()
@friendly
def runs(
    config_path: ConfigOption = DEFAULT_CONFIG,
    limit: Annotated[int, typer.Option(help="How many runs.")] = 20,
    model: Annotated[str | None, typer.Option(help="Only this model.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Recent runs, newest first; errors under the table."""
    config = load(config_path)
    ledger = Ledger.from_url(config.ledger.url)
    ledger.migrate()
    _print_runs(ledger, ledger.runs(limit=limit, model_name=model), as_json=as_json)


def _print_runs(ledger: Ledger, runs: list[Run], *, as_json: bool = False) -> None:
    print_runs([_row(run, ledger.stages(run.id)) for run in runs], as_json=as_json)


def _row(run: Run, stages: list[StageRecord]) -> RunRow:
    spent: dict[RunState, float] = {}
    for stage in stages:
        end = stage.ended_at or datetime.now(stage.started_at.tzinfo)
        spent[stage.state] = spent.get(stage.state, 0.0) + (end - stage.started_at).total_seconds()
    outcome = run.submission_id or run.error or run.detail.get("dry_run") or ""
    rows = run.detail.get("rows")
    return RunRow(
        id=run.id, model=run.model_name, tournament=run.tournament, round=run.round_number,
        is_test=run.is_test, state=run.state.value,
        seconds=(run.updated_at - run.created_at).total_seconds() if run.state.is_final else None,
        predict_s=spent.get(RunState.PREDICTING), rows=rows if isinstance(rows, int) else None,
        outcome=str(outcome),
        extra={"model_id": run.model_id, "trigger_id": run.trigger_id, "source": run.source,
               "attempts": run.attempts, "submission_id": run.submission_id,
               "error": run.error, "created_at": run.created_at.isoformat(),
               "updated_at": run.updated_at.isoformat(),
               "stage_seconds": {s.value: round(v, 3) for s, v in spent.items()}},
    )


@app.command("webhook-url")
@friendly
def webhook_url_command(
    model: Annotated[str, typer.Argument(help="The model's name in autopilot.toml.")],
    base_url: Annotated[str | None, typer.Option(help="Where the server is reachable, e.g. https://x.run.app (default: server.public_url).")] = None,
    config_path: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Print the tokenized URL to register as the model's webhook on Numerai."""
    config = load(config_path)
    base_url = base_url or config.server.public_url
    if base_url is None:
        raise ConfigError(f"{config.source}: where is the server reachable? Pass --base-url "
                          "https://... or set server.public_url")
    chosen = config.model(model)
    secret = current_secret(config)
    model_id = chosen.model_id or asyncio.run(_resolve_id(config, model))
    console.print(webhook_url(base_url, model_id, secret), soft_wrap=True)


async def _resolve_id(config: AppConfig, name: str) -> str:
    """The id of model `name`, configured by name only, from the account's models."""
    async with httpx.AsyncClient() as http:
        ids = ModelIds(config.models, config.source)
        await ids.resolve(NumeraiClient.from_settings(http, config.numerai))
        return ids.id_of(name)
