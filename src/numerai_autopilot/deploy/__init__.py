"""Deploying the server: Google Cloud Run commands, the one-time set-up steps, the checks
around a deploy (memory, public access, no secret in the image), and the
Litestream-replicated SQLite ledger.

    from numerai_autopilot.deploy import CloudRunOptions, Runner, deploy_command, run_setup
"""

from numerai_autopilot.deploy.cloudrun import (
    ALERTS_ENV,
    PASSWORD_ENV,
    PASSWORD_SOURCE_ENV,
    PUBLIC_URL_ENV,
    SECRET_ENV,
    CloudRunOptions,
    CloudSQL,
    deploy_command,
    describe_url_command,
    set_public_url_command,
)
from numerai_autopilot.deploy.contents import (
    check_env_file_not_uploaded,
    check_no_literal_secrets,
)
from numerai_autopilot.deploy.health import IAM_FAILED, ServiceCheckError, check_public
from numerai_autopilot.deploy.litestream import run_replicated
from numerai_autopilot.deploy.runner import CommandError, Runner
from numerai_autopilot.deploy.setup import run_setup
from numerai_autopilot.deploy.sizing import check_memory_fits

__all__ = [
    "ALERTS_ENV",
    "IAM_FAILED",
    "PASSWORD_ENV",
    "PASSWORD_SOURCE_ENV",
    "PUBLIC_URL_ENV",
    "SECRET_ENV",
    "CloudRunOptions",
    "CloudSQL",
    "CommandError",
    "Runner",
    "ServiceCheckError",
    "check_env_file_not_uploaded",
    "check_memory_fits",
    "check_no_literal_secrets",
    "check_public",
    "deploy_command",
    "describe_url_command",
    "run_replicated",
    "run_setup",
    "set_public_url_command",
]
