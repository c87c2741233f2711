"""The configuration's shape: one pydantic model per table of `autopilot.toml`.

Each table is frozen and refuses unknown keys; sizes (`4GiB`) and durations (`10m`) are
parsed into bytes and seconds on the way in. `AppConfig` holds the tables; each part of the
service is handed the table it uses (e.g. the executor gets `AppConfig.executor`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from numerai_autopilot.config.blends import BlendMissing, check_blends, with_blend_data_versions
from numerai_autopilot.config.environments import (
    EnvironmentSettings,
    check_environments,
    name_environments,
)
from numerai_autopilot.config.health import HealthSettings, OnSuspect
from numerai_autopilot.config.strength import check_secret, check_secrets
from numerai_autopilot.config.units import Duration, Size, parse_size
from numerai_autopilot.errors import ConfigError

TournamentName = Literal["classic", "signals", "crypto"]
DataTransfer = Literal["scatter", "shared"]
KeepBusyMode = Literal["auto", "on", "off"]
TOURNAMENT_IDS: dict[str, int] = {"classic": 8, "signals": 11, "crypto": 12}
TOURNAMENT_NAMES: dict[int, str] = {number: name for name, number in TOURNAMENT_IDS.items()}
# Each tournament's current data version: the default of `models.NAME.data_version`.
DEFAULT_DATA_VERSIONS: dict[str, str] = {"classic": "v5.3", "signals": "v2.1", "crypto": "v2.0"}

class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NumeraiSettings(_Table):
    """`[numerai]`: where Numerai is and the account's keys (prefer the environment)."""

    api_url: str = "https://api-tournament.numer.ai"
    public_id: SecretStr | None = None
    secret_key: SecretStr | None = None
    timeout: Duration = 30.0


class ServerSettings(_Table):
    """`[server]`: the webhook server."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    # secret, previous_secrets and admin_token: at least 32 random bytes (config/strength.py).
    secret: SecretStr | None = None
    previous_secrets: tuple[SecretStr, ...] = ()
    public_url: str | None = None
    admin_token: SecretStr | None = None
    # Dashboard login besides the admin token: a user name and a password (or its hash from
    # `numerai_autopilot.web.dashboard.passwords.hash_password`).
    dashboard_user: str | None = None
    dashboard_password: SecretStr | None = None
    dashboard_password_hash: SecretStr | None = None
    max_concurrent_runs: int = Field(default=32, ge=1)
    # A crashed instance's unfinished runs are taken over once their lease runs out.
    run_lease: Duration = 30.0
    # The round watcher starts a run for a model whose webhook did not come this long
    # after the round opened; it polls Numerai's current round every `watch_interval`.
    watch_after: Duration = 600.0
    watch_interval: Duration = 60.0
    # While runs are unfinished, hold a request to the server's own front door open, so a
    # platform that allocates CPU only during requests (Cloud Run's request-based billing)
    # counts the work after the webhook's answer: "auto" under Cloud Run with `public_url`.
    keep_busy: KeepBusyMode = "auto"
    # `/metrics` without a credential, for a Prometheus scraper that sends no token.
    metrics_public: bool = False

    @field_validator("previous_secrets", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        # From the environment (AUTOPILOT_PREVIOUS_SECRETS): "old1,old2".
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("secret", "admin_token")
    @classmethod
    def _strong(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_secret(value.get_secret_value())
        return value

    @field_validator("previous_secrets")
    @classmethod
    def _strong_each(cls, values: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        check_secrets([value.get_secret_value() for value in values])
        return values

    def webhook_secrets(self) -> list[str]:
        """The secrets a webhook token may be made with: `secret` (empty when unset) first,
        then `previous_secrets` (a rotation's grace period)."""
        current = [self.secret.get_secret_value()] if self.secret is not None else []
        return [*current, *(s.get_secret_value() for s in self.previous_secrets)]


class LedgerSettings(_Table):
    """`[ledger]`: where runs are recorded (SQLite file by default, PostgreSQL for several instances).

    `replica`: a Litestream replica URL (`gs://BUCKET/PATH`, `file:///path`) the SQLite
    ledger is restored from and replicated to when the server runs under
    `autopilot litestream serve` (what a Cloud Run deploy does).
    """

    url: str = "sqlite:///.autopilot/ledger.db"
    replica: str | None = None

    @field_validator("replica")
    @classmethod
    def _replica_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if "://" not in value:
            raise ValueError(f"{value!r} is not a replica URL; write e.g. 'gs://BUCKET/ledger' "
                             "or 'file:///var/backups/ledger'")
        return value


class DataSettings(_Table):
    """`[data]`: the round data cache."""

    cache_dir: Path = Path(".autopilot/data")
    keep_rounds: int = Field(default=2, ge=1)


class ExecutorConfig(_Table):
    """`[executor]`: where predictors run; the `Executor` takes this table as it is.

    `scheduler` unset starts a local Dask cluster on 127.0.0.1 of `workers` processes with
    `threads_per_worker` threads and `memory_limit` bytes each. A scheduler address
    (`tcp://host:8786`) joins an external cluster instead; start its scheduler with
    `DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=0` and
    `DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION=1.0` (the executor also sets both on the
    running scheduler).
    """

    scheduler: str | None = None
    workers: int = Field(default=2, ge=1)
    threads_per_worker: int = Field(default=1, ge=1)
    memory_limit: Size = parse_size("4GiB")
    # How round files reach workers: "scatter" sends each file's bytes once per file (for
    # workers on other machines; each worker writes them once to its local directory),
    # "shared" passes its path (the data cache_dir is mounted at the same path on every
    # worker). Default: `round_file_transfer`.
    data_transfer: DataTransfer | None = None
    # The folders Model Upload pickles may load from (a pickle is code: treat them as
    # source), relative to the config's folder; empty: the config's folder only.
    pickle_dirs: tuple[Path, ...] = ()
    # What the predictors kept loaded between rounds may take in each worker (least
    # recently used dropped first); unset: half the worker's memory limit.
    warm_budget: Size | None = None

    @property
    def round_file_transfer(self) -> DataTransfer:
        """`data_transfer`, or its default: shared for a local cluster, scatter to a scheduler."""
        if self.data_transfer is not None:
            return self.data_transfer
        return "shared" if self.scheduler is None else "scatter"

    @field_validator("scheduler")
    @classmethod
    def _scheduler_address(cls, value: str | None) -> str | None:
        if not value:
            return None
        if "://" not in value:
            raise ValueError(f"{value!r} is not a scheduler address; write e.g. 'tcp://10.0.0.5:8786'")
        return value


class AlertSettings(_Table):
    """`[alerts]`: apprise URLs to notify (best-effort)."""

    urls: tuple[SecretStr, ...] = ()
    # Warn when a model has not submitted this long before the round closes (0: never).
    before_close: Duration = 1800.0
    check_interval: Duration = 60.0
    # At most `rate_limit` alerts per `rate_window`; the rest are dropped (and counted).
    rate_limit: int = Field(default=10, ge=1)
    rate_window: Duration = 3600.0
    round_summary: bool = True


class ModelConfig(_Table):
    """`[models.NAME]`: one Numerai model and the predictor that serves it, or the models
    it blends (`blend`, config/blends.py)."""

    name: str
    # Member name -> weight: a weighted rank average of these models' predictions of the
    # round (no predictor of its own). Before `predictor`, whose check reads it.
    blend: dict[str, float] | None = None
    predictor: str | None = Field(default=None, validate_default=True)
    model_id: str | None = None
    tournament: TournamentName = "classic"
    data_version: str = "v5.3"
    timeout: Duration = 600.0
    memory: Size | None = None
    resubmit: bool = False
    # Used when the predictor fails, times out or returns invalid predictions: another
    # predictor reference, or "benchmark:COLUMN" of live_benchmark_models.
    fallback: str | None = None
    # Keep trying after the round's close and submit late (scored, not staked).
    late_submissions: bool = False
    # Start a run if no webhook arrived `server.watch_after` after the round opened.
    watch: bool = True
    # A run whose figures leave the model's band ([health]): submit and alert ("warn"),
    # submit the fallback ("fallback"), or wait for approval on the dashboard ("hold").
    on_suspect: OnSuspect = "warn"
    # A blend's members that failed, were held or have no predictions when it stops
    # waiting: "renormalize" blends the rest (at least half the weight), "fail" fails.
    blend_missing: BlendMissing = "renormalize"
    # How long a blend waits for its members' predictions (never past its deadline).
    blend_wait: Duration = 1800.0
    # An `[environments.NAME]` to run the predictor in; None: the service's own.
    environment: str | None = None

    @property
    def tournament_id(self) -> int:
        """Numerai's number for the model's tournament (8, 11 or 12)."""
        return TOURNAMENT_IDS[self.tournament]

    @model_validator(mode="before")
    @classmethod
    def _tournament_data_version(cls, data: object) -> object:
        if isinstance(data, dict) and "data_version" not in data:
            version = DEFAULT_DATA_VERSIONS.get(str(data.get("tournament", "classic")))
            if version is not None:
                data = {**data, "data_version": version}
        return data

    @field_validator("predictor")
    @classmethod
    def _predictor_ref(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("blend") is not None:
            if value is not None:
                raise ValueError("a blend has no predictor of its own; remove predictor, or "
                                 "blend to serve this model with its predictor")
            return None
        if value is None:
            raise ValueError("required; add it, or blend = { alpha = 0.5, beta = 0.5 } to blend "
                             "other models")
        if not value.strip():
            raise ValueError("empty; write 'package.module:function', 'file.py:function' or 'model.pkl'")
        return value.strip()

    @field_validator("fallback")
    @classmethod
    def _fallback_ref(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if value.startswith("benchmark:") and not value.removeprefix("benchmark:"):
            raise ValueError("name the benchmark column, e.g. 'benchmark:v53_lgbm_ender20'")
        if not value:
            raise ValueError("empty; remove it or name a predictor or 'benchmark:COLUMN'")
        return value

    @field_validator("timeout", "blend_wait")
    @classmethod
    def _positive_timeout(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be above zero, e.g. '600s'")
        return value

    @model_validator(mode="after")
    def _blend_weights(self) -> ModelConfig:
        # after the fields (not a field check): a bad weight must not also fail `predictor`
        if self.blend is not None and not self.blend:
            raise ValueError("blend: empty; name the models to blend and their weights, e.g. "
                             "{ alpha = 0.5, beta = 0.5 }")
        for member, weight in (self.blend or {}).items():
            if not 0 < weight < float("inf"):
                raise ValueError(f"blend: {member} = {weight}: a weight must be above zero, "
                                 f"e.g. {{ {member} = 0.5, ... }}; remove {member} to leave it out")
        return self

    @model_validator(mode="after")
    def _suspect_fallback(self) -> ModelConfig:
        if self.on_suspect == "fallback" and self.fallback is None:
            raise ValueError('on_suspect = "fallback" needs a fallback: set fallback (a predictor '
                             'or "benchmark:COLUMN"), or on_suspect = "warn" or "hold"')
        return self

    @model_validator(mode="after")
    def _benchmark_fallback_is_classic(self) -> ModelConfig:
        if self.fallback and self.fallback.startswith("benchmark:") and self.tournament != "classic":
            raise ValueError(
                f"fallback: {self.fallback!r} needs live benchmark models, which only the Classic "
                "tournament publishes; name a predictor as the fallback instead"
            )
        return self


class AppConfig(_Table):
    """The whole configuration; `base_dir` is the folder predictor paths are relative to."""

    base_dir: Path = Path(".")
    source: str = "<defaults>"
    numerai: NumeraiSettings = NumeraiSettings()
    server: ServerSettings = ServerSettings()
    ledger: LedgerSettings = LedgerSettings()
    data: DataSettings = DataSettings()
    executor: ExecutorConfig = ExecutorConfig()
    alerts: AlertSettings = AlertSettings()
    health: HealthSettings = HealthSettings()
    environments: dict[str, EnvironmentSettings] = {}
    models: dict[str, ModelConfig] = {}

    @model_validator(mode="before")
    @classmethod
    def _name_models(cls, data: object) -> object:
        if isinstance(data, dict) and isinstance(data.get("models"), dict):
            models = {}
            for name, table in data["models"].items():
                models[name] = {"name": name, **table} if isinstance(table, dict) else table
            data = {**data, "models": models}
        return with_blend_data_versions(name_environments(data), DEFAULT_DATA_VERSIONS)

    @model_validator(mode="after")
    def _blends(self) -> AppConfig:
        check_blends(self.models, self.server.max_concurrent_runs)
        check_environments(self.models, self.environments)
        return self

    @model_validator(mode="after")
    def _unique_model_ids(self) -> AppConfig:
        seen: dict[str, str] = {}
        for name, model in self.models.items():
            if model.name != name:
                raise ValueError(f"models.{name}: name {model.name!r} differs from its table name")
            if model.model_id and model.model_id in seen:
                raise ValueError(
                    f"models.{name}.model_id: already used by models.{seen[model.model_id]}"
                )
            if model.model_id:
                seen[model.model_id] = name
        return self

    @model_validator(mode="after")
    def _paths_from_the_config_folder(self) -> AppConfig:
        """A relative SQLite ledger and data cache are in the config file's folder, not the
        current one, whichever folder a command runs from."""
        ledger = _sqlite_in(self.ledger.url, self.base_dir)
        cache = self.resolve_path(self.data.cache_dir)
        if ledger == self.ledger.url and cache == self.data.cache_dir:
            return self
        return self.model_copy(update={
            "ledger": self.ledger.model_copy(update={"url": ledger}),
            "data": self.data.model_copy(update={"cache_dir": cache})})

    def model(self, name: str) -> ModelConfig:
        """The model configured as `name`; ConfigError lists the configured ones."""
        try:
            return self.models[name]
        except KeyError:
            known = ", ".join(sorted(self.models)) or "none"
            raise ConfigError(
                f"{self.source}: no model named {name!r} (configured: {known})"
            ) from None

    def resolve_path(self, path: Path) -> Path:
        """`path` as given when absolute, else relative to `base_dir` (the config's folder)."""
        return path if path.is_absolute() else (self.base_dir / path)


def _sqlite_in(url: str, folder: Path) -> str:
    """`url` with a relative SQLite file made relative to `folder`; other URLs as given.

    >>> _sqlite_in("sqlite:///.autopilot/ledger.db", Path("/srv/project"))
    'sqlite:////srv/project/.autopilot/ledger.db'
    >>> _sqlite_in("sqlite:////var/ledger.db", Path("/srv/project"))
    'sqlite:////var/ledger.db'
    """
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return url
    path, mark, query = url[len(prefix):].partition("?")
    if not path or path.startswith(("/", ":memory:")) or Path(path).is_absolute():
        return url
    return f"{prefix}{folder / path}{mark}{query}"
