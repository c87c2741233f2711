"""The `gcloud` commands that deploy the server to Cloud Run.

The service runs `autopilot serve` (see the Dockerfile) with:
- `--no-cpu-throttling`: runs go on after the webhook's 200 (CPU always allocated);
- `--timeout 3600`, a dedicated service account, unauthenticated invocation (Numerai cannot
  authenticate: the per-model token in the URL guards the webhook, the admin token the API);
- the keys and secrets as `--set-secrets` from Secret Manager, never as plain env vars.

    options = CloudRunOptions(project="my-proj", region="europe-west1")
    deploy_command(options)   # ["gcloud", "run", "deploy", "autopilot", ...]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Environment variable -> Secret Manager secret name (prefixed by the service's name).
SECRET_ENV = {
    "NUMERAI_PUBLIC_ID": "numerai-public-id",
    "NUMERAI_SECRET_KEY": "numerai-secret-key",
    "AUTOPILOT_SECRET": "webhook-secret",
    "AUTOPILOT_ADMIN_TOKEN": "admin-token",
}
APIS = (
    "run.googleapis.com",
    "cloudbuild.googleapis.com",
    "artifactregistry.googleapis.com",
    "secretmanager.googleapis.com",
)


@dataclass(frozen=True, slots=True)
class CloudRunOptions:
    """What `autopilot deploy cloudrun` was asked for."""

    project: str
    region: str
    service: str = "autopilot"
    memory: str = "4Gi"
    cpu: str = "2"
    min_instances: int = 0
    max_instances: int = 1
    image: str | None = None
    source: Path = Path(".")
    config_in_image: str = "/app/autopilot.toml"

    @property
    def service_account(self) -> str:
        """The service's own service account's email."""
        return f"{self.service_account_name}@{self.project}.iam.gserviceaccount.com"

    @property
    def service_account_name(self) -> str:
        # Service account ids are 6-30 characters: lower case, digits and dashes.
        return f"{self.service}-run"[:30]

    def secret_name(self, env_name: str) -> str:
        """The Secret Manager secret holding `env_name` (a key of SECRET_ENV) for this service."""
        return f"{self.service}-{SECRET_ENV[env_name]}"


def deploy_command(o: CloudRunOptions) -> list[str]:
    """`gcloud run deploy` from source (Cloud Build builds the Dockerfile) or from `image`."""
    origin = ["--image", o.image] if o.image else ["--source", str(o.source)]
    secrets = ",".join(f"{env}={o.secret_name(env)}:latest" for env in SECRET_ENV)
    return [
        "gcloud", "run", "deploy", o.service,
        "--project", o.project,
        "--region", o.region,
        *origin,
        "--service-account", o.service_account,
        "--memory", o.memory,
        "--cpu", o.cpu,
        "--min-instances", str(o.min_instances),
        "--max-instances", str(o.max_instances),
        "--no-cpu-throttling",
        "--timeout", "3600",
        "--allow-unauthenticated",
        "--set-secrets", secrets,
        "--set-env-vars", f"GOOGLE_CLOUD_PROJECT={o.project},AUTOPILOT_CONFIG={o.config_in_image}",
        # The image's entrypoint is `autopilot`; Cloud Logging wants structured lines.
        "--args", "serve,--host,0.0.0.0,--log-format,json",
        "--quiet",
    ]


def describe_url_command(o: CloudRunOptions) -> list[str]:
    """Prints the service's URL (`https://SERVICE-....run.app`)."""
    return [
        "gcloud", "run", "services", "describe", o.service,
        "--project", o.project,
        "--region", o.region,
        "--format", "value(status.url)",
    ]
