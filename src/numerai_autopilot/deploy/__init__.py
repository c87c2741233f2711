"""Deploying the server: Google Cloud Run commands and the one-time set-up steps.

    from numerai_autopilot.deploy import CloudRunOptions, Runner, deploy_command, run_setup
"""

from numerai_autopilot.deploy.cloudrun import (
    SECRET_ENV,
    CloudRunOptions,
    deploy_command,
    describe_url_command,
)
from numerai_autopilot.deploy.runner import CommandError, Runner
from numerai_autopilot.deploy.setup import run_setup

__all__ = [
    "SECRET_ENV",
    "CloudRunOptions",
    "CommandError",
    "Runner",
    "deploy_command",
    "describe_url_command",
    "run_setup",
]
