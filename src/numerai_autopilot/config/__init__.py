"""Configuration: `autopilot.toml` plus environment overrides (and the `.env` file beside
it), `sm://` secrets, what a secret must be, webhook tokens.

    from numerai_autopilot.config import environment, load_config
    path = Path("autopilot.toml")
    config = load_config(path, env=environment(path, os.environ))
    executor = Executor(config.executor, ...)   # each part gets the table it uses

Every mistake is a ConfigError (numerai_autopilot.errors) naming the file, the key and the fix.
"""

from numerai_autopilot.config.env_file import (
    ENV_FILE,
    env_file_of,
    environment,
    read_env_file,
    write_env_file,
)
from numerai_autopilot.config.environments import ENVS_DIR, EnvironmentSettings
from numerai_autopilot.config.health import HealthSettings, OnSuspect
from numerai_autopilot.config.loader import literal_secrets, load_config, parse_config
from numerai_autopilot.config.models import (
    TOURNAMENT_IDS,
    TOURNAMENT_NAMES,
    AlertSettings,
    AppConfig,
    DataSettings,
    ExecutorConfig,
    LedgerSettings,
    ModelConfig,
    NumeraiSettings,
    ServerSettings,
)
from numerai_autopilot.config.secret_manager import (
    SecretManagerClient,
    SecretResolver,
    version_name,
)
from numerai_autopilot.config.strength import MAKE_ONE, MIN_BYTES, check_secret
from numerai_autopilot.config.tokens import verify_token, webhook_token, webhook_url
from numerai_autopilot.config.units import format_size, parse_duration, parse_size

__all__ = [
    "ENVS_DIR",
    "ENV_FILE",
    "MAKE_ONE",
    "MIN_BYTES",
    "TOURNAMENT_IDS",
    "TOURNAMENT_NAMES",
    "AlertSettings",
    "AppConfig",
    "DataSettings",
    "EnvironmentSettings",
    "ExecutorConfig",
    "HealthSettings",
    "LedgerSettings",
    "ModelConfig",
    "NumeraiSettings",
    "OnSuspect",
    "SecretManagerClient",
    "SecretResolver",
    "ServerSettings",
    "check_secret",
    "env_file_of",
    "environment",
    "format_size",
    "literal_secrets",
    "load_config",
    "parse_config",
    "parse_duration",
    "parse_size",
    "read_env_file",
    "verify_token",
    "version_name",
    "webhook_token",
    "webhook_url",
    "write_env_file",
]
