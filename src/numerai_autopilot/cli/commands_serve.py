"""Long-running commands: `serve` (the server), `sandbox` (a local Numerai), `demo`.

`serve` and `sandbox` run until interrupted; `demo` until its round is done, exiting 0 when
every model submitted. A bad config exits 2 (`shared.friendly`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import os
import socket
import time
from collections.abc import Callable, Collection
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from numerai_autopilot.cli.shared import DEFAULT_CONFIG, ConfigOption, app, friendly, load
from numerai_autopilot.errors import ConfigError
from numerai_autopilot.logs import setup_logging

if TYPE_CHECKING:
    import uvicorn

    from numerai_autopilot.config.models import ServerSettings

log = logging.getLogger(__name__)
# A connection that has not sent a whole request's headers this long after it opened is
# closed (slowloris); uvicorn's keep-alive timeout covers only the wait after a response.
HEADER_TIMEOUT_S = 10.0


@app.command()
@friendly
def serve(
    config_path: ConfigOption = DEFAULT_CONFIG,
    host: Annotated[str | None, typer.Option(help="Bind address (default: server.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: $PORT, then server.port).")] = None,
    log_format: Annotated[str, typer.Option(help="text, or json for Cloud Logging.")] = "text",
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING.")] = "INFO",
) -> None:
    """Answer Numerai's webhooks and run every model's round.

    With neither server.admin_token nor server.dashboard_user, on a loopback address it
    prints a sign-in link to the dashboard that works once. On SIGTERM (or Ctrl-C) it claims
    no more runs at once, then leaves every run in flight resumable and exits
    (`Runtime.drain`, `Runtime.close`).
    """
    import uvicorn

    from numerai_autopilot.runs.keepbusy import keep_busy_url
    from numerai_autopilot.runtime import Runtime
    from numerai_autopilot.web import create_app

    setup_logging(log_level, log_format)
    try:
        config = load(config_path)
        bind_host = host or config.server.host
        bind_port = port if port is not None else int(os.environ.get("PORT", config.server.port))
        listener = listen(bind_host, bind_port)  # a port in use is said before anything else
    except ConfigError as exc:
        if log_format != "json":
            raise
        log.error("configuration error: %s", exc)  # one line, JSON as every other of this mode
        raise typer.Exit(2) from None
    login_code = _login_code(config.server, bind_host)
    runtime = Runtime(config, keep_busy_url=keep_busy_url(
        config.server, os.environ, host=bind_host, port=bind_port, source=config.source))
    settings = uvicorn.Config(
        create_app(config, runtime=runtime, login_code=login_code),
        host=bind_host,
        port=bind_port,
        # uvicorn's loggers go through the process's logging (text, or JSON for Cloud
        # Logging), set up above, instead of a configuration of their own.
        log_config=None,
        # An access log would print each webhook's URL, and with it the model's token.
        access_log=False,
        # Cloud Run kills the container 10 s after SIGTERM: open requests (webhooks take
        # milliseconds; held keep-busy requests are answered at the signal) get a little of
        # that, the runtime's shutdown the rest.
        timeout_graceful_shutdown=2,
        # Idle connections are kept longer than a proxy in front keeps its own (nginx: 60 s
        # to its upstreams), so it never reuses one just as the server closes it.
        timeout_keep_alive=75,
    )
    banner = None
    if login_code is not None:
        host = f"[{bind_host}]" if ":" in bind_host else bind_host
        port_number = listener.getsockname()[1]
        banner = (f"dashboard: sign in at http://{host}:{port_number}/login?code={login_code} "
                  "(works once; printed here only)")
    try:
        _run(settings, on_signal=runtime.drain, sockets=[listener], banner=banner)
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C once it has stopped and logged so
        raise typer.Exit(130) from None  # no "interrupted" line: not JSON, and said already


def _login_code(server: ServerSettings, host: str) -> str | None:
    """A one-time dashboard sign-in code when no sign-in is configured and `host` is a
    loopback address (only this machine's users can open the link); None otherwise, with a
    warning when nobody could sign in at all."""
    from numerai_autopilot.web.dashboard import new_login_code

    if server.admin_token is not None or server.dashboard_user is not None:
        return None
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if loopback:
        return new_login_code()
    log.warning("no server.admin_token or server.dashboard_user is set and the server listens "
                "on %s: the dashboard, the JSON API and /metrics refuse every request; set "
                "AUTOPILOT_ADMIN_TOKEN (e.g. python -c \"import secrets; "
                "print(secrets.token_urlsafe(32))\")", host)
    return None


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to `host`:`port` (as uvicorn binds one) for the server to serve on.

    :raises ConfigError: the port is in use, or the address cannot be bound; one line naming
        the port and how to choose another.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"port {port} on {host} is already in use (another server?); "
                              "choose another with --port or $PORT") from None
        raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose the "
                          "address with --host and the port with --port or $PORT") from None
    return sock


def _run(config: uvicorn.Config, *, on_signal: Callable[[], None],
         sockets: list[socket.socket], banner: str | None = None) -> None:
    """Run uvicorn's server on `sockets`, calling `on_signal` on its event loop as soon as
    SIGTERM or SIGINT arrives, closing connections that send no request's headers within
    `HEADER_TIMEOUT_S`, and printing `banner` to stdout once it serves.

    uvicorn waits for open requests before it shuts the app down (its lifespan); the
    runtime must stop claiming and answer its held keep-busy requests before that, at the
    signal itself (https://cloud.google.com/run/docs/container-contract: SIGTERM, then
    SIGKILL 10 s later).
    """
    import uvicorn

    class Server(uvicorn.Server):
        loop: asyncio.AbstractEventLoop | None = None

        def __init__(self, config: uvicorn.Config) -> None:
            super().__init__(config)
            # connection -> (its last request cycle, first seen waiting for headers)
            self.opened: dict[Any, tuple[Any, float]] = {}

        async def serve(self, sockets: list[socket.socket] | None = None) -> None:
            self.loop = asyncio.get_running_loop()
            await super().serve(sockets)

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if banner is not None and self.started:
                print(banner, flush=True)

        async def on_tick(self, counter: int) -> bool:
            if counter % 10 == 0:  # a tick is 0.1 s
                close_stalled(self.server_state.connections, self.opened, time.monotonic())
            return await super().on_tick(counter)

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            super().handle_exit(sig, frame)
            if self.loop is not None:  # in a signal handler: hand it to the event loop
                with contextlib.suppress(RuntimeError):  # the loop has already closed
                    self.loop.call_soon_threadsafe(on_signal)

    Server(config).run(sockets=sockets)


def close_stalled(connections: Collection[Any], opened: dict[Any, tuple[Any, float]],
                  now: float, timeout: float = HEADER_TIMEOUT_S) -> None:
    """Close each of uvicorn's `connections` (its protocol objects) that has been waiting for
    a request's headers for `timeout` s: since it opened, or since the first bytes of its
    next request after a response; `opened` keeps, between calls, when each began waiting.

    uvicorn starts a connection's request cycle once the headers are parsed: until the first
    one its `cycle` is None. After a response the finished cycle stays, and uvicorn's
    keep-alive timer runs until the next bytes arrive (it closes an idle connection itself,
    after `timeout_keep_alive`): a finished cycle with no timer is a request whose headers are
    still coming.
    """
    for connection in [c for c in opened if c not in connections]:
        del opened[connection]
    for connection in connections:
        cycle = getattr(connection, "cycle", None)
        waiting = cycle is None or (
            cycle.response_complete
            and getattr(connection, "timeout_keep_alive_task", None) is None
            and not connection.transport.is_closing())
        if not waiting:
            opened.pop(connection, None)
            continue
        since = opened.get(connection)
        if since is None or since[0] is not cycle:  # a new wait (after another request)
            opened[connection] = since = (cycle, now)
        if now - since[1] >= timeout:
            connection.transport.close()


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
    webhook_body: Annotated[str, typer.Option(
        help="Shape of webhook bodies: standard, string_round, float_round, null_is_test, "
             "string_is_test, null_fields, no_trigger, trigger_only, cli_mock, extra_fields.",
    )] = "standard",
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
    try:
        settings = SandboxSettings(
            data_dir=data_dir,
            public_id=public_id or DEFAULT_PUBLIC_ID,
            secret_key=secret_key or DEFAULT_SECRET_KEY,
            models=parse_models(models),
            seed=seed,
            webhook_body=webhook_body,
        )
    except ValueError as exc:  # the message names the option and what it takes
        raise typer.BadParameter(str(exc)) from None
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


