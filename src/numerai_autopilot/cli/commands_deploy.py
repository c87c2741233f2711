"""`autopilot deploy cloudrun`: one command from a config file to a registered webhook.

The gcloud commands are built in `numerai_autopilot.deploy` and run one by one (`--dry-run`
prints them); a failed one stops the deploy with its output (exit 1). Secrets reach gcloud
on standard input, never on a command line.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from numerai_autopilot.cli.commands_ops import register_webhooks
from numerai_autopilot.cli.shared import DEFAULT_CONFIG, ConfigOption, app, console, friendly, load
from numerai_autopilot.config import AppConfig
from numerai_autopilot.deploy import (
    SECRET_ENV,
    CloudRunOptions,
    CommandError,
    Runner,
    deploy_command,
    describe_url_command,
    run_setup,
)
from numerai_autopilot.errors import ConfigError

deploy_app = typer.Typer(help="Deploy the server (Google Cloud Run).", no_args_is_help=True)
app.add_typer(deploy_app, name="deploy")


@deploy_app.command("cloudrun")
@friendly
def cloudrun(
    project: Annotated[str, typer.Option(help="Google Cloud project id.")],
    region: Annotated[str, typer.Option(help="Cloud Run region, e.g. europe-west1.")],
    config_path: ConfigOption = DEFAULT_CONFIG,
    service: Annotated[str, typer.Option(help="Cloud Run service name.")] = "autopilot",
    memory: Annotated[str, typer.Option(help="Memory per instance.")] = "4Gi",
    cpu: Annotated[str, typer.Option(help="CPUs per instance.")] = "2",
    min_instances: Annotated[int, typer.Option(help="Instances kept warm.")] = 0,
    max_instances: Annotated[int, typer.Option(help="More than 1 needs a PostgreSQL ledger.")] = 1,
    image: Annotated[str | None, typer.Option(help="Deploy this image instead of building from source.")] = None,
    source: Annotated[Path | None, typer.Option(help="Folder with the Dockerfile (default: the config's folder).")] = None,
    setup: Annotated[bool, typer.Option("--setup", help="First make the one-time resources (idempotent).")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print every command; run none.")] = False,
    register: Annotated[bool, typer.Option(help="Register the webhooks at the service's URL.")] = True,
) -> None:
    """Deploy to Cloud Run (CPU always on, keys from Secret Manager), then register the webhooks."""
    config = load(config_path)
    folder = source or config.base_dir
    if image is None and not dry_run and not (folder / "Dockerfile").is_file():
        raise ConfigError(
            f"{folder}: no Dockerfile; deploy from the folder that has one (--source DIR) "
            "or pass --image"
        )
    if max_instances > 1 and config.ledger.url.startswith("sqlite") and not dry_run:
        raise ConfigError(
            f"{config.source}: ledger.url: several instances cannot share a SQLite file; use "
            "PostgreSQL (e.g. Cloud SQL) or --max-instances 1"
        )
    options = CloudRunOptions(
        project=project, region=region, service=service, memory=memory, cpu=cpu,
        min_instances=min_instances, max_instances=max_instances, image=image, source=folder,
    )
    runner = Runner(dry_run=dry_run, echo=lambda line: console.print(line, soft_wrap=True,
                                                                     markup=False))
    if setup:
        console.print("one-time set-up (skips what exists):")
        run_setup(options, runner, _secret_values(config))
    console.print("deploy:")
    runner.run(deploy_command(options))
    url = runner.run(describe_url_command(options), capture=True).stdout.strip()
    if dry_run:
        console.print("then: autopilot register --base-url <the service URL>")
        return
    if not url.startswith("https://"):
        raise CommandError(f"Cloud Run gave no service URL for {service} (got {url!r})")
    console.print(f"service URL: {url}", soft_wrap=True)
    if register:
        asyncio.run(register_webhooks(config, url, clear=False))
        console.print(f"next: autopilot trigger MODEL --wait --server {url}", soft_wrap=True)


def _secret_values(config: AppConfig) -> dict[str, str | None]:
    """The value of each of `SECRET_ENV`'s variables from the config (None when unset)."""
    secrets = {
        "NUMERAI_PUBLIC_ID": config.numerai.public_id,
        "NUMERAI_SECRET_KEY": config.numerai.secret_key,
        "AUTOPILOT_SECRET": config.server.secret,
        "AUTOPILOT_ADMIN_TOKEN": config.server.admin_token,
    }
    assert set(secrets) == set(SECRET_ENV)
    return {env: s.get_secret_value() if s is not None else None for env, s in secrets.items()}
