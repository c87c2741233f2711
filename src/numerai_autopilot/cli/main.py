"""`autopilot`: the commands, each a thin layer over the library.

Every command takes `--config` (default `autopilot.toml`, or `$AUTOPILOT_CONFIG`) and reports
errors as one readable line per problem, exit code 2 for bad input and 1 for a failed action.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console

from numerai_autopilot.config import AppConfig, load_config
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
console = Console(stderr=False, highlight=False)
err = Console(stderr=True, highlight=False)

ConfigOption = Annotated[
    Path,
    typer.Option("--config", "-c", envvar="AUTOPILOT_CONFIG", help="Path to autopilot.toml."),
]
DEFAULT_CONFIG = Path("autopilot.toml")


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    from numerai_autopilot.observe.logs import setup_logging

    setup_logging(level=level, fmt=fmt)


def load(path: Path) -> AppConfig:
    return load_config(path, env=os.environ)


def friendly(func: Callable[P, R]) -> Callable[P, R]:
    """Turn our errors into one clear message and an exit code instead of a traceback."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            err.print(f"[red]configuration error:[/red] {exc}", markup=True, soft_wrap=True)
            raise typer.Exit(2) from None
        except AutopilotError as exc:
            err.print(f"[red]error:[/red] {exc}", markup=True, soft_wrap=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper


def main() -> None:
    from numerai_autopilot.cli import (  # noqa: F401  (registers)
        commands_deploy,
        commands_local,
        commands_ops,
        commands_serve,
    )

    app(prog_name="autopilot")


if __name__ == "__main__":  # pragma: no cover
    main()

