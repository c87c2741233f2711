"""The `autopilot` command line."""

from numerai_autopilot.cli.main import app, main

__all__ = ["app", "main"]
