"""The `autopilot` command line: the Typer `app`, and `main()`, which runs it.

    $ autopilot --help                      # the console script: numerai_autopilot.cli:main
    $ python -m numerai_autopilot --help

Every command takes `--config` (default `autopilot.toml`, or `$AUTOPILOT_CONFIG`) and reports
errors as one readable line per problem, exit code 2 for bad input and 1 for a failed action
(`shared.friendly`).
"""

# Importing a command module adds its commands to `app`.
from numerai_autopilot.cli import (  # noqa: F401
    commands_deploy,
    commands_envs,
    commands_local,
    commands_ops,
    commands_serve,
)
from numerai_autopilot.cli.shared import app

__all__ = ["app", "main"]


def main() -> None:
    """Run the command named on the command line; exits with its code."""
    app(prog_name="autopilot")
