"""Long-running commands: serve, sandbox, demo."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated

import typer

from numerai_autopilot.cli.main import (
    DEFAULT_CONFIG,
    ConfigOption,
    app,
    configure_logging,
    friendly,
    load,
)

LogFormat = Annotated[str, typer.Option("--log-format", help="text, or json for Cloud Logging.")]


@app.command()
@friendly
def serve(
    config_path: ConfigOption = DEFAULT_CONFIG,
    host: Annotated[str | None, typer.Option(help="Bind address (default: server.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: $PORT, then server.port).")] = None,
    log_format: LogFormat = "text",
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING.")] = "INFO",
) -> None:
    """Answer Numerai's webhooks and run every model's round."""
    import uvicorn

    from numerai_autopilot.web import create_app

    configure_logging(log_level, log_format)
    config = load(config_path)
    bind_port = port if port is not None else int(os.environ.get("PORT", config.server.port))
    uvicorn.run(
        create_app(config),
        host=host or config.server.host,
        port=bind_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
        # Idle connections kept 75 s (nginx's default) instead of 5 s: a proxy or load
        # balancer that pools connections less often reuses one just as we close it (the
        # 1,000-webhook flood test saw such requests fail in transit).
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
    from numerai_autopilot.sandbox.server import serve as serve_sandbox
    from numerai_autopilot.sandbox.settings import (
        DEFAULT_PUBLIC_ID,
        DEFAULT_SECRET_KEY,
        SandboxSettings,
        parse_models,
    )

    configure_logging("INFO")
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
    from numerai_autopilot.demo.round import run_demo

    configure_logging("WARNING")
    code = asyncio.run(run_demo(workdir, timeout=timeout, keep_serving=keep_serving))
    raise typer.Exit(code)


