"""What every `autopilot` command is built on: the Typer app, the consoles, `--config`,
and the rule that turns errors into one readable line and an exit code.

    @app.command()
    @friendly
    def runs(config_path: ConfigOption = DEFAULT_CONFIG) -> None:
        config = load(config_path)      # ConfigError -> "configuration error: ...", exit 2

Exit codes: 2 for bad input (ConfigError), 1 for a failed action (any other
AutopilotError), 130 when interrupted. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from numerai_autopilot import __version__
from numerai_autopilot.config import AppConfig, environment, load_config
from numerai_autopilot.errors import AutopilotError, ConfigError

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(
    name="autopilot",
    help="A self-hosted Numerai Compute: one service answers Numerai's webhooks for all your models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(asked: bool) -> None:
    if asked:
        typer.echo(f"numerai-autopilot {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """A self-hosted Numerai Compute: one service answers Numerai's webhooks for all your models."""


console = Console(stderr=False, highlight=False)
err = Console(stderr=True, highlight=False)

ConfigOption = Annotated[
    Path,
    typer.Option("--config", "-c", envvar="AUTOPILOT_CONFIG", help="Path to autopilot.toml."),
]
DEFAULT_CONFIG = Path("autopilot.toml")
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON, for scripts.")]


def load(path: Path) -> AppConfig:
    """The config at `path` with this process's environment over the `.env` file beside
    it; raises ConfigError."""
    return load_config(path, env=environment(path, os.environ))


def friendly(func: Callable[P, R]) -> Callable[P, R]:
    """Turn our errors into one clear message and an exit code instead of a traceback."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            err.print(f"[red]configuration error:[/red] {escape(str(exc))}", markup=True,
                      soft_wrap=True)
            raise typer.Exit(2) from None
        except AutopilotError as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}", markup=True, soft_wrap=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper


def colour(state: str) -> str:
    """A run state in Rich markup: green submitted, red failed, yellow skipped, magenta
    dry-run, else cyan."""
    colours = {"submitted": "green", "failed": "red", "skipped": "yellow", "dry-run": "magenta"}
    return f"[{colours.get(state, 'cyan')}]{state}[/]"
