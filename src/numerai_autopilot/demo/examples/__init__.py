"""Example predictors shipped with the package (used by `autopilot init` and the demo)."""
