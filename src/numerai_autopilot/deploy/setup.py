"""The one-time Google Cloud set-up, idempotent: each step looks before it creates.

In order: enable the APIs a Cloud Run deploy needs (IAM's included); make the service's own
service account and a build service account (granted `roles/run.builder` on the project,
what Cloud Build needs to build from source); one Secret Manager secret per secret the
service reads (values on standard input), each readable by the service's account only; and
the ledger's home: a Cloud Storage bucket for Litestream, on which only the service's account
is granted `roles/storage.objectAdmin` (a bucket-level binding, nothing project-wide), or for
Cloud SQL `roles/cloudsql.client` on the project. An existing secret keeps its value (add a
version with `gcloud secrets versions add NAME --data-file=-` to rotate it).

IAM bindings naming an account created moments ago are retried while IAM has not propagated
it (`Runner.run_until_propagated`). Adding a binding that exists changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

from numerai_autopilot.deploy.cloudrun import (
    APIS,
    CLOUDSQL_APIS,
    PASSWORD_ENV,
    PASSWORD_SOURCE_ENV,
    CloudRunOptions,
)
from numerai_autopilot.deploy.runner import CommandError, Runner

ACCESSOR = "roles/secretmanager.secretAccessor"
BUILDER = "roles/run.builder"
BUCKET_ROLE = "roles/storage.objectAdmin"
CLOUDSQL_CLIENT = "roles/cloudsql.client"


def run_setup(o: CloudRunOptions, runner: Runner, values: Mapping[str, str | None]) -> None:
    """Make whatever is missing.

    :param values: each of `o.secrets()`'s environment variables -> its value (or None),
        written to a secret only when that secret does not exist yet.
    :raises CommandError: a gcloud command failed, or a missing secret has no value here.
    """
    project = ["--project", o.project]
    _enable_apis(o, runner)
    _service_account(o, runner, o.service_account, o.service_account_name,
                     f"numerai-autopilot ({o.service})")
    _service_account(o, runner, o.build_service_account, o.build_service_account_name,
                     f"numerai-autopilot builds ({o.service})")
    _grant_project_role(o, runner, o.build_service_account, BUILDER)

    for env_name, name in o.secrets().items():
        if not runner.exists(["gcloud", "secrets", "describe", name, *project]):
            value = values.get(env_name)
            source = PASSWORD_SOURCE_ENV if env_name == PASSWORD_ENV else env_name
            if not value and not runner.dry_run:
                raise CommandError(
                    f"secret {name} does not exist and {source} has no value here; set "
                    f"{source} in the environment (or the .env file beside autopilot.toml) "
                    "and run --setup again"
                )
            runner.run(["gcloud", "secrets", "create", name, *project,
                        "--replication-policy", "automatic"])
            runner.run(["gcloud", "secrets", "versions", "add", name, *project, "--data-file=-"],
                       stdin=(value or "").encode(), note=f"the value of {source}, on stdin")
        runner.run_until_propagated(
            ["gcloud", "secrets", "add-iam-policy-binding", name, *project,
             "--member", f"serviceAccount:{o.service_account}", "--role", ACCESSOR],
            capture=True)  # gcloud prints the secret's whole policy

    if o.cloudsql is not None:
        _grant_project_role(o, runner, o.service_account, CLOUDSQL_CLIENT)
    elif o.replicated:
        _ledger_bucket(o, runner)


def _enable_apis(o: CloudRunOptions, runner: Runner) -> None:
    wanted = [*APIS, *CLOUDSQL_APIS] if o.cloudsql is not None else list(APIS)
    listed = runner.run(
        ["gcloud", "services", "list", "--enabled", "--project", o.project,
         "--format", "value(config.name)"],
        capture=True, quiet=True,
    )
    missing = [api for api in wanted if api not in listed.stdout.split()]
    if missing:
        runner.run(["gcloud", "services", "enable", *missing, "--project", o.project])


def _service_account(o: CloudRunOptions, runner: Runner, email: str, name: str,
                     display: str) -> None:
    if not runner.exists(["gcloud", "iam", "service-accounts", "describe", email,
                          "--project", o.project]):
        runner.run(["gcloud", "iam", "service-accounts", "create", name, "--project", o.project,
                    "--display-name", display])


def _grant_project_role(o: CloudRunOptions, runner: Runner, email: str, role: str) -> None:
    runner.run_until_propagated(
        ["gcloud", "projects", "add-iam-policy-binding", o.project,
         "--member", f"serviceAccount:{email}", "--role", role, "--condition=None"],
        capture=True)  # gcloud prints the project's whole policy: not worth showing


def _ledger_bucket(o: CloudRunOptions, runner: Runner) -> None:
    bucket = f"gs://{o.bucket}"
    if not runner.exists(["gcloud", "storage", "buckets", "describe", bucket,
                          "--project", o.project, "--format", "value(name)"]):
        # In the service's region (no egress between regions); no public access, ever.
        runner.run(["gcloud", "storage", "buckets", "create", bucket, "--project", o.project,
                    "--location", o.region, "--uniform-bucket-level-access",
                    "--public-access-prevention"])
    runner.run_until_propagated(
        ["gcloud", "storage", "buckets", "add-iam-policy-binding", bucket,
         "--project", o.project, "--member", f"serviceAccount:{o.service_account}",
         "--role", BUCKET_ROLE],
        capture=True)
