"""Long-running commands: `serve` (the server), `sandbox` (a local Numerai), `demo`.

`serve` and `sandbox` run until interrupted; `demo` until its round is done, exiting 0 when
every model submitted. A bad config exits 2 (`shared.friendly`).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated

import typer

from numerai_autopilot.cli.shared import DEFAULT_CONFIG, ConfigOption, app, friendly, load
from numerai_autopilot.observe import setup_logging


@app.command()
@friendly
def serve(
    config_path: ConfigOption = DEFAULT_CONFIG,
    host: Annotated[str | None, typer.Option(help="Bind address (default: server.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: $PORT, then server.port).")] = None,
    log_format: Annotated[str, typer.Option(help="text, or json for Cloud Logging.")] = "text",
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING.")] = "INFO",
) -> None:
    """Answer Numerai's webhooks and run every model's round."""
    import uvicorn

    from numerai_autopilot.web import create_app

    setup_logging(log_level, log_format)
    config = load(config_path)
    bind_port = port if port is not None else int(os.environ.get("PORT", config.server.port))
    uvicorn.run(
        create_app(config),
        host=host or config.server.host,
        port=bind_port,
        # uvicorn's loggers go through the process's logging (text, or JSON for Cloud
        # Logging), set up above, instead of a configuration of their own.
        log_config=None,
        # An access log would print each webhook's URL, and with it the model's token.
        access_log=False,
        # A request still open 10 s after SIGTERM is cut, so no client can hold up the
        # runtime's shutdown (leases released, workers stopped).
        timeout_graceful_shutdown=10,
        # Idle connections are kept longer than a proxy in front keeps its own (nginx: 60 s
        # to its upstreams), so it never reuses one just as the server closes it.
        timeout_keep_alive=75,
    )


@app.command()
@friendly
def sandbox(
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8700,
    data_dir: Annotated[Path, typer.Option(help="Where synthetic data is generated.")] = Path(".autopilot/sandbox"),
    public_id: Annotated[str | None, typer.Option(help="The account's public id.")] = None,
    secret_key: Annotated[str | None, typer.Option(help="The account's secret key.")] = None,
    models: Annotated[str, typer.Option(help="Model names, comma separated (name:11 for Signals).")] = "alpha,beta,gamma",
    seed: Annotated[int, typer.Option(help="Seed of the synthetic data.")] = 0,
) -> None:
    """Run a local Numerai sandbox (GraphQL API, data, uploads, webhooks) for testing."""
    from numerai_autopilot.sandbox import (
        DEFAULT_PUBLIC_ID,
        DEFAULT_SECRET_KEY,
        SandboxSettings,
        parse_models,
    )
    from numerai_autopilot.sandbox import serve as serve_sandbox

    setup_logging("INFO")
    settings = SandboxSettings(
        data_dir=data_dir,
        public_id=public_id or DEFAULT_PUBLIC_ID,
        secret_key=secret_key or DEFAULT_SECRET_KEY,
        models=parse_models(models),
        seed=seed,
    )
    serve_sandbox(settings, host=host, port=port)


@app.command()
@friendly
def demo(
    workdir: Annotated[Path, typer.Option(help="Where the demo keeps its files.")] = Path(".autopilot/demo"),
    timeout: Annotated[float, typer.Option(help="Give up after this many seconds.")] = 300.0,
    keep_serving: Annotated[
        bool, typer.Option("--keep-serving", help="Afterwards, keep serving the dashboard.")
    ] = False,
) -> None:
    """A whole round on this machine: sandbox, example models, real webhooks and submissions."""
    from numerai_autopilot.demo import run_demo

    setup_logging("WARNING")
    code = asyncio.run(run_demo(workdir, timeout=timeout, keep_serving=keep_serving))
    raise typer.Exit(code)


