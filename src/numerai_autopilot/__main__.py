"""`python -m numerai_autopilot ...` is the `autopilot` command."""

from numerai_autopilot.cli import main

main()
