"""`autopilot deploy cloudrun`: one command from a config file to a registered webhook, and
`autopilot litestream`, which the deployed container runs.

The gcloud commands are built in `numerai_autopilot.deploy` and run one by one (`--dry-run`
prints them); a failed one stops the deploy with its output (exit 1). Secrets reach gcloud
on standard input, never on a command line. Before anything runs, the config must hold no
secret (it goes into the image; secrets come from the environment and Secret Manager), a
source deploy must not upload the `.env` file, and the config must fit the instance
(memory); after the deploy, the service must answer `/healthz` without credentials before
any webhook is registered.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from numerai_autopilot.cli.commands_ops import register_webhooks
from numerai_autopilot.cli.shared import DEFAULT_CONFIG, ConfigOption, app, console, friendly, load
from numerai_autopilot.config import AppConfig, environment
from numerai_autopilot.deploy import (
    ALERTS_ENV,
    IAM_FAILED,
    PASSWORD_ENV,
    PASSWORD_SOURCE_ENV,
    CloudRunOptions,
    CloudSQL,
    CommandError,
    Runner,
    check_env_file_not_uploaded,
    check_memory_fits,
    check_no_literal_secrets,
    check_public,
    deploy_command,
    describe_url_command,
    run_replicated,
    run_setup,
    set_public_url_command,
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
    memory: Annotated[str, typer.Option(help="Memory per instance (the executor's workers must fit).")] = "4Gi",
    cpu: Annotated[str, typer.Option(help="CPUs per instance.")] = "2",
    min_instances: Annotated[int, typer.Option(help="Instances kept warm (billed while idle).")] = 0,
    max_instances: Annotated[int, typer.Option(help="More than 1 needs a PostgreSQL ledger (--cloudsql).")] = 1,
    image: Annotated[str | None, typer.Option(help="Deploy this image instead of building from source.")] = None,
    source: Annotated[Path | None, typer.Option(help="Folder with the Dockerfile (default: the config's folder).")] = None,
    cloudsql: Annotated[str | None, typer.Option(help="Cloud SQL for PostgreSQL instance as the ledger (INSTANCE or PROJECT:REGION:INSTANCE).")] = None,
    cloudsql_database: Annotated[str, typer.Option(help="The ledger's database on --cloudsql.")] = "autopilot",
    cloudsql_user: Annotated[str, typer.Option(help="The PostgreSQL user on --cloudsql (password: AUTOPILOT_LEDGER_PASSWORD at --setup).")] = "autopilot",
    bucket: Annotated[str | None, typer.Option(help="Cloud Storage bucket of the ledger's replica (default: PROJECT-SERVICE-ledger).")] = None,
    setup: Annotated[bool, typer.Option("--setup", help="First make the one-time resources (idempotent).")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print every command; run none.")] = False,
    register: Annotated[bool, typer.Option(help="Register the webhooks at the service's URL.")] = True,
    previous_secret_version: Annotated[str | None, typer.Option(help="During a rotation: the webhook secret's old version (a number) in Secret Manager, still accepted.")] = None,
) -> None:
    """Deploy to Cloud Run (scale to zero, durable ledger, keys from Secret Manager), check the
    service answers without credentials, then register the webhooks."""
    check_no_literal_secrets(config_path)
    config = load(config_path)
    folder = source or config.base_dir
    if image is None and not dry_run and not (folder / "Dockerfile").is_file():
        raise ConfigError(
            f"{folder}: no Dockerfile; deploy from the folder that has one (--source DIR) "
            "or pass --image"
        )
    if image is None:
        check_env_file_not_uploaded(folder)
    if previous_secret_version is not None and not previous_secret_version.isdigit():
        raise ConfigError(f"--previous-secret-version {previous_secret_version!r}: write the "
                          "version's number (`gcloud secrets versions list SECRET`)")
    sqlite = config.ledger.url.startswith("sqlite")
    if max_instances > 1 and sqlite and cloudsql is None:
        raise ConfigError(
            f"{config.source}: ledger.url: several instances cannot share a SQLite file; use "
            "PostgreSQL (--cloudsql INSTANCE) or --max-instances 1"
        )
    check_memory_fits(config.executor, memory, source=config.source, environment_workers=sum(
        env.workers for env in config.environments.values()))
    options = CloudRunOptions(
        project=project, region=region, service=service, memory=memory, cpu=cpu,
        min_instances=min_instances, max_instances=max_instances, image=image, source=folder,
        sqlite_ledger=sqlite, ledger_bucket=bucket,
        cloudsql=None if cloudsql is None else CloudSQL(
            _connection_name(cloudsql, project, region), cloudsql_database, cloudsql_user),
        previous_secret_version=previous_secret_version, alerts=bool(config.alerts.urls),
    )
    runner = Runner(dry_run=dry_run, echo=lambda line: console.print(line, soft_wrap=True,
                                                                     markup=False))
    if setup:
        console.print("one-time set-up (skips what exists):")
        run_setup(options, runner, _secret_values(config, environment(config_path, os.environ)))

    # An existing service's URL is known before the deploy: the new revision gets it at once.
    known = None if dry_run else _service_url(runner, options, quiet=True)
    options = replace(options, public_url=known)
    console.print("deploy:")
    deployed = runner.run_until_propagated(deploy_command(options))
    url = _service_url(runner, options, quiet=False)
    if dry_run:
        console.print("then: gcloud run services update ... --update-env-vars "
                      "AUTOPILOT_SERVER_PUBLIC_URL=<the service URL>, GET <the service URL>"
                      "/healthz, autopilot register --base-url <the service URL>")
        return
    if url is None:
        raise CommandError(f"Cloud Run gave no service URL for {service}; see "
                           f"`gcloud run services describe {service} --region {region}`")
    console.print(f"service URL: {url}", soft_wrap=True)
    if url != known:
        # The first deploy: the server learns its own URL (server.public_url) from here on.
        runner.run(set_public_url_command(options, url), tee=True)
    console.print("checking that the service answers without credentials (as Numerai calls "
                  "it): GET /healthz")
    check_public(url, service=service, region=region, iam_failed=IAM_FAILED in deployed.stderr)
    console.print("ok: /healthz answered 200")
    if register:
        asyncio.run(register_webhooks(config, url, clear=False))
        console.print(f"next: autopilot trigger MODEL --wait --server {url}", soft_wrap=True)


@deploy_app.command("check-config")
@friendly
def check_config(config_path: ConfigOption = DEFAULT_CONFIG) -> None:
    """Refuse a config that holds a secret (exit 2, naming each key): what the Dockerfile
    runs on the config it copies into the image."""
    check_no_literal_secrets(config_path)
    console.print(f"{config_path}: holds no secret")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@friendly
def litestream(ctx: typer.Context, config_path: ConfigOption = DEFAULT_CONFIG) -> None:
    """Run an autopilot command (`serve ...`) with the SQLite ledger restored from
    `ledger.replica` first and replicated there by Litestream while it runs.

    Example: `autopilot litestream serve --host 0.0.0.0` (what a Cloud Run deploy runs).
    """
    if not ctx.args:
        raise ConfigError("name the command to run under Litestream, e.g. "
                          "`autopilot litestream serve --host 0.0.0.0`")
    config = load(config_path)
    child = [sys.executable, "-m", "numerai_autopilot", *ctx.args,
             "--config", str(config_path.absolute())]
    run_replicated(config.ledger, child)


def _service_url(runner: Runner, options: CloudRunOptions, *, quiet: bool) -> str | None:
    """The service's URL, or None when there is no such service (yet) or in a dry run."""
    done = runner.run(describe_url_command(options), capture=True, quiet=quiet, check=False)
    url = done.stdout.strip()
    if not quiet and done.returncode != 0:
        raise CommandError(f"`gcloud run services describe {options.service}` failed after the "
                           f"deploy: {done.stderr.strip()[-1000:]}")
    return url if url.startswith(("https://", "http://")) else None


def _connection_name(instance: str, project: str, region: str) -> str:
    """`PROJECT:REGION:INSTANCE` (the socket's name under /cloudsql/) for `instance`, which
    may be given as a bare name in the deploy's project and region."""
    parts = instance.split(":")
    if len(parts) == 1:
        return f"{project}:{region}:{instance}"
    if len(parts) != 3 or not all(parts):
        raise ConfigError(f"--cloudsql {instance!r}: write the instance's name, or its "
                          "connection name PROJECT:REGION:INSTANCE")
    return instance


def _secret_values(config: AppConfig, env: Mapping[str, str]) -> dict[str, str | None]:
    """The value of each secret environment variable (None when unset), as loaded: from the
    environment or the `.env` file (the config file holds none: `check_no_literal_secrets`);
    the Cloud SQL password from AUTOPILOT_LEDGER_PASSWORD in `env`."""
    secrets = {
        "NUMERAI_PUBLIC_ID": config.numerai.public_id,
        "NUMERAI_SECRET_KEY": config.numerai.secret_key,
        "AUTOPILOT_SECRET": config.server.secret,
        "AUTOPILOT_ADMIN_TOKEN": config.server.admin_token,
    }
    values = {env: s.get_secret_value() if s is not None else None for env, s in secrets.items()}
    values[PASSWORD_ENV] = env.get(PASSWORD_SOURCE_ENV) or None
    values[ALERTS_ENV] = " ".join(u.get_secret_value() for u in config.alerts.urls) or None
    return values
