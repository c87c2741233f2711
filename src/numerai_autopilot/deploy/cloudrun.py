"""The `gcloud` commands that deploy the server to Cloud Run, and what they are built from.

The service runs `autopilot serve` (see the Dockerfile) with:
- request-based billing (`--cpu-throttling`), `--min-instances 0`, `--max-instances 1`: an
  idle service costs nothing; the server keeps its instance busy while runs are unfinished;
- `--execution-environment gen2`, `--timeout 3600`, a dedicated service account, and
  unauthenticated invocation (Numerai cannot authenticate: the per-model token in the URL
  guards the webhook, the admin token the API);
- the keys and secrets as `--set-secrets` from Secret Manager, never as plain env vars (during
  a rotation, an older version of the webhook secret as `AUTOPILOT_PREVIOUS_SECRETS`);
- a ledger that outlives the instance: the SQLite file restored from and replicated to a
  Cloud Storage bucket by Litestream (`autopilot litestream serve ...`), or with `cloudsql`
  PostgreSQL on Cloud SQL through the instance's Unix socket under `/cloudsql/`;
- `AUTOPILOT_SERVER_PUBLIC_URL` (`server.public_url`): the service's own URL, once known.

    options = CloudRunOptions(project="my-proj", region="europe-west1")
    deploy_command(options)   # ["gcloud", "run", "deploy", "autopilot", ...]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Environment variable on the service -> Secret Manager secret (prefixed by the service's name).
SECRET_ENV = {
    "NUMERAI_PUBLIC_ID": "numerai-public-id",
    "NUMERAI_SECRET_KEY": "numerai-secret-key",
    "AUTOPILOT_SECRET": "webhook-secret",
    "AUTOPILOT_ADMIN_TOKEN": "admin-token",
}
# Alert URLs (apprise's, with their tokens), space separated, when there are any.
ALERTS_ENV, ALERTS_SECRET = "AUTOPILOT_ALERTS_URLS", "alert-urls"
# During a rotation: the webhook secret's previous version, still accepted.
PREVIOUS_SECRETS_ENV = "AUTOPILOT_PREVIOUS_SECRETS"
# The Cloud SQL user's password reaches libpq (psycopg) as PGPASSWORD, from this secret; --setup
# reads its value from AUTOPILOT_LEDGER_PASSWORD.
PASSWORD_ENV = "PGPASSWORD"
PASSWORD_SECRET = "ledger-password"
PASSWORD_SOURCE_ENV = "AUTOPILOT_LEDGER_PASSWORD"
# Config overrides the deploy sets on the service (config/loader.py's AUTOPILOT_<TABLE>_<KEY>).
PUBLIC_URL_ENV = "AUTOPILOT_SERVER_PUBLIC_URL"
REPLICA_ENV = "AUTOPILOT_LEDGER_REPLICA"
LEDGER_URL_ENV = "AUTOPILOT_LEDGER_URL"

APIS = (
    "run.googleapis.com",
    "cloudbuild.googleapis.com",
    "artifactregistry.googleapis.com",
    "secretmanager.googleapis.com",
    "iam.googleapis.com",
    "storage.googleapis.com",
)
# `gcloud run deploy --set-cloudsql-instances` wants both enabled (it asks, and without a
# terminal to ask on, it aborts): flags.CheckCloudSQLApiEnablement in gcloud's run commands.
CLOUDSQL_APIS = ("sql-component.googleapis.com", "sqladmin.googleapis.com")
SERVE_ARGS = ("serve", "--host", "0.0.0.0", "--log-format", "json")


@dataclass(frozen=True, slots=True)
class CloudSQL:
    """`--cloudsql`: a Cloud SQL for PostgreSQL instance as the ledger (several instances).

    :param instance: the connection name `PROJECT:REGION:INSTANCE`.
    :param database: the database the ledger's tables go in (the user must own it).
    :param user: the PostgreSQL user; its password is the `ledger-password` secret.
    """

    instance: str
    database: str = "autopilot"
    user: str = "autopilot"

    @property
    def ledger_url(self) -> str:
        """The ledger's URL on the service: psycopg over the Unix socket Cloud Run mounts at
        `/cloudsql/INSTANCE`; no password in it (libpq reads PGPASSWORD)."""
        return (f"postgresql+psycopg://{self.user}@/{self.database}"
                f"?host=/cloudsql/{self.instance}")


@dataclass(frozen=True, slots=True)
class CloudRunOptions:
    """What `autopilot deploy cloudrun` was asked for.

    :param sqlite_ledger: the config's ledger is a SQLite file; without `cloudsql` it is
        then replicated to `bucket` with Litestream.
    :param public_url: the service's URL when known (an existing service), set on it as
        `AUTOPILOT_SERVER_PUBLIC_URL`.
    :param previous_secret_version: during a rotation, the version (a number) of the webhook
        secret whose tokens stay valid, handed in as `AUTOPILOT_PREVIOUS_SECRETS`.
    :param alerts: the alert URLs (which hold tokens) come from a secret of their own, as
        `AUTOPILOT_ALERTS_URLS` (set when the deploying environment has them).
    """

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
    sqlite_ledger: bool = True
    cloudsql: CloudSQL | None = None
    ledger_bucket: str | None = None
    public_url: str | None = None
    previous_secret_version: str | None = None
    alerts: bool = False

    @property
    def service_account(self) -> str:
        """The service's own service account's email (what the server runs as)."""
        return self._account(self.service_account_name)

    @property
    def service_account_name(self) -> str:
        # Service account ids are 6-30 characters: lower case, digits and dashes.
        return f"{self.service}-run"[:30]

    @property
    def build_service_account(self) -> str:
        """The email of the account Cloud Build builds the image as (`roles/run.builder`)."""
        return self._account(self.build_service_account_name)

    @property
    def build_service_account_name(self) -> str:
        return f"{self.service}-build"[:30]

    @property
    def replicated(self) -> bool:
        """Whether the ledger is SQLite replicated by Litestream (else PostgreSQL)."""
        return self.sqlite_ledger and self.cloudsql is None

    @property
    def bucket(self) -> str:
        """The Cloud Storage bucket of the ledger's replica (names are global: the project's
        id makes it unique)."""
        return self.ledger_bucket or f"{self.project}-{self.service}-ledger"[:63]

    @property
    def replica_url(self) -> str:
        """Litestream's replica URL for the ledger (`gs://BUCKET/ledger`)."""
        return f"gs://{self.bucket}/ledger"

    def secrets(self) -> dict[str, str]:
        """Each environment variable the service reads from Secret Manager -> the secret."""
        names = {env: f"{self.service}-{name}" for env, name in SECRET_ENV.items()}
        if self.cloudsql is not None:
            names[PASSWORD_ENV] = f"{self.service}-{PASSWORD_SECRET}"
        if self.alerts:
            names[ALERTS_ENV] = f"{self.service}-{ALERTS_SECRET}"
        return names

    def secret_refs(self) -> dict[str, str]:
        """Each secret environment variable of the service -> `SECRET:VERSION`."""
        refs = {env: f"{name}:latest" for env, name in self.secrets().items()}
        if self.previous_secret_version:
            webhook_secret = self.secrets()["AUTOPILOT_SECRET"]
            refs[PREVIOUS_SECRETS_ENV] = f"{webhook_secret}:{self.previous_secret_version}"
        return refs

    def env_vars(self) -> dict[str, str]:
        """The plain environment variables of the service (no secret among them)."""
        env = {"GOOGLE_CLOUD_PROJECT": self.project, "AUTOPILOT_CONFIG": self.config_in_image}
        if self.cloudsql is not None:
            env[LEDGER_URL_ENV] = self.cloudsql.ledger_url
        elif self.replicated:
            env[REPLICA_ENV] = self.replica_url
        if self.public_url:
            env[PUBLIC_URL_ENV] = self.public_url
        return env

    def _account(self, name: str) -> str:
        return f"{name}@{self.project}.iam.gserviceaccount.com"


def deploy_command(o: CloudRunOptions) -> list[str]:
    """`gcloud run deploy` from source (Cloud Build builds the Dockerfile, as the build
    service account) or from `image`."""
    origin = ["--image", o.image] if o.image else [
        "--source", str(o.source),
        "--build-service-account",
        f"projects/{o.project}/serviceAccounts/{o.build_service_account}",
    ]
    # The image's entrypoint is `autopilot`; with Litestream, `autopilot litestream serve ...`
    # restores the ledger, then runs the server under `litestream replicate -exec`.
    args = ("litestream", *SERVE_ARGS) if o.replicated else SERVE_ARGS
    cloudsql = ["--set-cloudsql-instances", o.cloudsql.instance] if o.cloudsql else []
    return [
        "gcloud", "run", "deploy", o.service,
        "--project", o.project,
        "--region", o.region,
        *origin,
        "--service-account", o.service_account,
        "--execution-environment", "gen2",
        "--memory", o.memory,
        "--cpu", o.cpu,
        # Request-based billing, stated so a service deployed before with
        # --no-cpu-throttling changes back.
        "--cpu-throttling",
        "--min-instances", str(o.min_instances),
        "--max-instances", str(o.max_instances),
        "--timeout", "3600",
        "--allow-unauthenticated",
        *cloudsql,
        "--set-secrets", ",".join(f"{env}={ref}" for env, ref in o.secret_refs().items()),
        "--set-env-vars", ",".join(f"{key}={value}" for key, value in o.env_vars().items()),
        "--args", ",".join(args),
        "--quiet",
    ]


def describe_url_command(o: CloudRunOptions) -> list[str]:
    """Prints the service's URL (`https://SERVICE-....run.app`); fails if there is none."""
    return [
        "gcloud", "run", "services", "describe", o.service,
        "--project", o.project,
        "--region", o.region,
        "--format", "value(status.url)",
    ]


def set_public_url_command(o: CloudRunOptions, url: str) -> list[str]:
    """Adds `AUTOPILOT_SERVER_PUBLIC_URL=url` to the service (a new revision): needed once,
    after the first deploy, when the URL was not known before it."""
    return [
        "gcloud", "run", "services", "update", o.service,
        "--project", o.project,
        "--region", o.region,
        "--update-env-vars", f"{PUBLIC_URL_ENV}={url}",
        "--quiet",
    ]
