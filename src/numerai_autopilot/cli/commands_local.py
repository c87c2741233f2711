"""Commands that work on this machine's config and ledger: init, run, runs, webhook-url."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

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
from numerai_autopilot.config import ENV_FILE, AppConfig, webhook_url, write_env_file
from numerai_autopilot.demo.examples import EXAMPLE_MODEL
from numerai_autopilot.errors import ConfigError
from numerai_autopilot.ledger import Ledger, LogLine, Run, RunState, StageRecord
from numerai_autopilot.logs import setup_logging
from numerai_autopilot.numerai import NumeraiClient
from numerai_autopilot.runs import ModelIds, new_run

if TYPE_CHECKING:
    from numerai_autopilot.runtime import Runtime


@app.command()
@friendly
def init(
    directory: Annotated[Path, typer.Argument(help="Where to write the files.")] = Path("."),
    force: Annotated[bool, typer.Option(help="Overwrite existing files.")] = False,
) -> None:
    """Write autopilot.toml, an example predictor and a .env file of new secrets (mode 600).

    The .env file holds a new server secret and admin token; every command reads it."""
    import secrets

    env_path = directory / ENV_FILE
    targets = {
        directory / "autopilot.toml": _example("autopilot.toml"),
        directory / "predictors" / "example.py": _example("example_predictor.py"),
    }
    for path in (*targets, env_path):
        if path.exists() and not force:
            raise ConfigError(f"{path} exists; pass --force to overwrite it")
    for path, text in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        console.print(f"wrote {path}")
    write_env_file(env_path, {"AUTOPILOT_SECRET": secrets.token_urlsafe(32),
                              "AUTOPILOT_ADMIN_TOKEN": secrets.token_urlsafe(32)}, _ENV_COMMENT)
    console.print(f"wrote {env_path} (mode 600): a new server secret and admin token, which "
                  "every `autopilot` command given this autopilot.toml reads. Keep a copy (a "
                  "password manager); keep it out of git and images. To have it in a shell: "
                  f"set -a; . {_sourceable(env_path)}; set +a", soft_wrap=True, markup=False)
    _ignore_env_file(directory / ".gitignore")
    console.print(
        f"next: rename [models.{EXAMPLE_MODEL}] in autopilot.toml to your model's name on "
        f"Numerai, put NUMERAI_PUBLIC_ID and NUMERAI_SECRET_KEY in {env_path} (or export "
        f"them), then `autopilot doctor` and `autopilot run MODEL --dry-run`", soft_wrap=True,
        markup=False,
    )


_ENV_COMMENT = """\
numerai-autopilot's secrets, read by every `autopilot` command given the autopilot.toml
in this folder (variables set in the environment win). Never commit this file or copy
it into an image; deploys take these values from the environment or Secret Manager.
To export them in a shell: set -a; . ./.env; set +a
Your Numerai API keys (https://numer.ai/account), if not in the environment:
NUMERAI_PUBLIC_ID=
NUMERAI_SECRET_KEY="""


def _sourceable(path: Path) -> str:
    """`path` as `.` (source) takes it: with a slash, or sh looks it up on PATH."""
    return str(path) if path.is_absolute() else f"./{path}"


def _ignore_env_file(gitignore: Path) -> None:
    """Make `gitignore` name the .env file (and the local state), so git never takes it,
    nor `gcloud run deploy --source`, which skips what .gitignore names."""
    lines = gitignore.read_text().splitlines() if gitignore.exists() else []
    if any(line.strip() in {ENV_FILE, f"/{ENV_FILE}", "*.env"} for line in lines):
        return
    added = [ENV_FILE] if lines else [ENV_FILE, ".autopilot/", "predictions/"]
    gitignore.write_text("\n".join([*lines, *added]) + "\n")
    console.print(f"{'added .env to' if lines else 'wrote'} {gitignore}")


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
    final = asyncio.run(_run_now(config, model, round_number, out.resolve() if dry_run else None))
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
        close_time = None
        if round_number is None:
            info = await runtime.rounds.get(model.tournament_id, wait=120)
            round_number, close_time = info.number, info.close_time
        # A dry run is no round's run: it neither skips nor is skipped by the round's others.
        run, _ = await asyncio.to_thread(
            runtime.ledger.record,
            new_run(model, runtime.model_ids.id_of(name),
                    source="manual" if dry_dir is None else "dry-run", round_number=round_number,
                    close_time=close_time, resubmit=model.resubmit or dry_dir is not None),
        )
        claimed = await asyncio.to_thread(runtime.ledger.claim_run, run.id, runtime.owner)
        if claimed is None:
            return run  # recorded as skipped (already submitted this round)
        task = asyncio.create_task(runtime.pipeline.execute(claimed))
        try:
            await _follow_run(runtime.ledger, run.id, task, download)
        except asyncio.CancelledError:  # Ctrl-C: asyncio.run cancels this coroutine
            await _interrupted(runtime, task, claimed, dry_run=dry_dir is not None)
            raise
        return await task


async def _interrupted(runtime: Runtime, task: asyncio.Task[Run], run: Run, dry_run: bool
                       ) -> None:
    """Stop `run`'s pipeline `task` now and record the run failed, as interrupted, unless it
    ended first. Its predictor's worker is stopped with the runtime's cluster; left as it
    was, the run would be resumed by the next server, which the user did not ask for."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await runtime.pipeline.flush()
    current = await asyncio.to_thread(runtime.ledger.get, run.id)
    if current is None or current.is_final:
        return
    again = f"autopilot run {run.model_name}" + (" --dry-run" if dry_run else "")
    message = f"interrupted (Ctrl-C) while {current.state.value}; run `{again}` again"
    await asyncio.to_thread(runtime.ledger.advance, run.id, RunState.FAILED,
                            owner=runtime.owner, error=message, log=("error", message))


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
            finished = task.done()  # then the lines read below are all it wrote
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
            if finished:
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
    found = run.detail.get("health")
    health: dict[str, Any] = found if isinstance(found, dict) else {}
    return RunRow(
        id=run.id, model=run.model_name, tournament=run.tournament, round=run.round_number,
        is_test=run.is_test, state=run.state.value,
        seconds=(run.updated_at - run.created_at).total_seconds() if run.state.is_final else None,
        predict_s=spent.get(RunState.PREDICTING), rows=rows if isinstance(rows, int) else None,
        peak_mb=peak if isinstance(peak := run.detail.get("peak_mb"), int | float) else None,
        outcome=str(outcome), suspect=tuple(health.get("suspect") or ()),
        extra={"model_id": run.model_id, "trigger_id": run.trigger_id, "source": run.source,
               "attempts": run.attempts, "submission_id": run.submission_id,
               "error": run.error, "created_at": run.created_at.isoformat(),
               "updated_at": run.updated_at.isoformat(),
               "stage_seconds": {s.value: round(v, 3) for s, v in spent.items()},
               **{key: run.detail[key] for key in ("compute_s", "load_s", "model_mb")
                  if key in run.detail}, "health": health or None},
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
