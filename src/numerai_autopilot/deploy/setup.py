"""The one-time Google Cloud set-up, idempotent: each step looks before it creates.

It enables the APIs a Cloud Run deploy needs, makes the service's own service account and one
Secret Manager secret per `SECRET_ENV` key (written from standard input), and grants the
account `roles/secretmanager.secretAccessor` on each. An existing secret keeps its value (add
a version with `gcloud secrets versions add NAME --data-file=-` to rotate it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from numerai_autopilot.deploy.cloudrun import APIS, SECRET_ENV, CloudRunOptions
from numerai_autopilot.deploy.runner import CommandError, Runner

ACCESSOR = "roles/secretmanager.secretAccessor"


def run_setup(o: CloudRunOptions, runner: Runner, values: Mapping[str, str | None]) -> None:
    """Make whatever is missing; `values` maps each SECRET_ENV name to its value (or None)."""
    project = ["--project", o.project]
    _enable_apis(o, runner)

    if not runner.exists(["gcloud", "iam", "service-accounts", "describe", o.service_account,
                          *project]):
        runner.run(["gcloud", "iam", "service-accounts", "create", o.service_account_name,
                    *project, "--display-name", f"numerai-autopilot ({o.service})"])

    for env_name in SECRET_ENV:
        name = o.secret_name(env_name)
        if not runner.exists(["gcloud", "secrets", "describe", name, *project]):
            value = values.get(env_name)
            if not value and not runner.dry_run:
                raise CommandError(
                    f"secret {name} does not exist and {env_name} has no value here; set "
                    f"{env_name} in the environment (or autopilot.toml) and run --setup again"
                )
            runner.run(["gcloud", "secrets", "create", name, *project,
                        "--replication-policy", "automatic"])
            runner.run(["gcloud", "secrets", "versions", "add", name, *project, "--data-file=-"],
                       stdin=(value or "").encode(), note=f"the value of {env_name}, on stdin")
        _grant_accessor(o, runner, name)


def _enable_apis(o: CloudRunOptions, runner: Runner) -> None:
    listed = runner.run(
        ["gcloud", "services", "list", "--enabled", "--project", o.project,
         "--format", "value(config.name)"],
        capture=True, quiet=True,
    )
    missing = [api for api in APIS if api not in listed.stdout.split()]
    if missing:
        runner.run(["gcloud", "services", "enable", *missing, "--project", o.project])


def _grant_accessor(o: CloudRunOptions, runner: Runner, secret: str) -> None:
    member = f"serviceAccount:{o.service_account}"
    policy = runner.run(
        ["gcloud", "secrets", "get-iam-policy", secret, "--project", o.project,
         "--format", "json"],
        capture=True, quiet=True, check=False,
    )
    if policy.returncode == 0 and _has_binding(policy.stdout, member):
        return
    runner.run(["gcloud", "secrets", "add-iam-policy-binding", secret, "--project", o.project,
                "--member", member, "--role", ACCESSOR])


def _has_binding(policy_json: str, member: str) -> bool:
    try:
        policy = json.loads(policy_json or "{}")
    except ValueError:
        return False
    return any(
        binding.get("role") == ACCESSOR and member in binding.get("members", [])
        for binding in policy.get("bindings", []) if isinstance(binding, dict)
    )
