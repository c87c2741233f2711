"""`autopilot envs build` and `autopilot envs list`: each model's own Python environment.

    $ autopilot envs build              # every [environments.NAME]; rebuilds only what changed
    $ autopilot envs build legacy --force
    $ autopilot envs list [--json]      # state, Python, key packages, size

`build` goes on past an environment that fails (the others still build) and exits 1 if any
failed. Installer output is streamed; credentials in index URLs are masked.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated

import typer
from rich.table import Table

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
from numerai_autopilot.config import AppConfig, format_size
from numerai_autopilot.envs import build, describe
from numerai_autopilot.errors import ConfigError, EnvironmentBuildError

envs_app = typer.Typer(help="Each model's own Python environment: build and list them.",
                       no_args_is_help=True)
app.add_typer(envs_app, name="envs")

_COLOURS = {"ready": "green", "failed": "red"}
NamesArgument = Annotated[
    list[str] | None,
    typer.Argument(help="Environments to build (default: every [environments.NAME]).",
                   show_default=False),
]


@envs_app.command("build")
@friendly
def build_command(
    names: NamesArgument = None,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even when up to date.")] = False,
    config_path: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Build each environment's virtualenv from its requirements (only those that changed)."""
    config = load(config_path)
    chosen = _names(config, names)
    if not chosen:
        console.print(f"{config.source}: no environments configured; nothing to build",
                      soft_wrap=True)
        return
    failed: list[str] = []
    for name in chosen:
        try:
            result = build(config, name, force=force, log=_printer(name))
        except EnvironmentBuildError as exc:
            err.print("[red]error:[/red] ", end="")
            err.print(str(exc), markup=False, soft_wrap=True, highlight=False)
            failed.append(name)
        else:
            done = "built" if result.built else "up to date"
            console.print(f"[green]{name}[/]: {done} (Python {result.python}, "
                          f"{result.seconds:.1f} s)", soft_wrap=True)
    if failed:
        err.print(f"{len(failed)} of {len(chosen)} environments failed: {', '.join(failed)}",
                  soft_wrap=True, highlight=False)
        raise typer.Exit(1)


@envs_app.command("list")
@friendly
def list_command(config_path: ConfigOption = DEFAULT_CONFIG, as_json: JsonOption = False) -> None:
    """Show each environment: state, Python, key packages (* from the server's), size."""
    config = load(config_path)
    rows = [describe(config, name) for name in config.environments]
    if as_json:
        console.print_json(json.dumps(rows))
        return
    if not rows:
        console.print(f"{config.source}: no environments configured", soft_wrap=True)
        return
    table = Table(box=None, pad_edge=False)
    for column in ("environment", "state", "python", "packages", "size"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row["name"], _colour(row["state"]), row["python"] or "-",
                      _packages(row["packages"]) or "-",
                      format_size(row["size_bytes"]) if row["python"] else "-")
    console.print(table)
    if any(info["from"] == "server" for row in rows for info in row["packages"].values()):
        console.print("* the server's own copy (the environment does not install it)")
    for row in rows:
        if row["problem"]:
            console.print(row["problem"], soft_wrap=True, markup=False, highlight=False)


def _colour(state: str) -> str:
    """An environment's state in Rich markup: green ready, red failed, else yellow."""
    return f"[{_COLOURS.get(state, 'yellow')}]{state}[/]"


def _names(config: AppConfig, names: list[str] | None) -> list[str]:
    """`names`, or every configured environment; ConfigError names unknown ones."""
    if not names:
        return list(config.environments)
    unknown = [name for name in names if name not in config.environments]
    if unknown:
        known = ", ".join(sorted(config.environments)) or "none"
        raise ConfigError(f"{config.source}: no environment named {unknown[0]!r} "
                          f"(configured: {known})")
    return list(dict.fromkeys(names))


def _printer(name: str) -> Callable[[str], None]:
    """A `log` for `build` that prints each line under the environment's name."""
    def log(line: str) -> None:
        console.print(f"[dim]{name} |[/] ", end="")
        console.print(line, soft_wrap=True, markup=False, highlight=False)
    return log


def _packages(packages: dict[str, dict[str, str]]) -> str:
    """`lightgbm 3.3.5, pandas 2.2.3*`: * marks a package the server's environment provides."""
    return ", ".join(f"{name} {info['version']}{'*' if info['from'] == 'server' else ''}"
                     for name, info in packages.items())
