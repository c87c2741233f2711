"""Configuration: `autopilot.toml` plus environment overrides, `sm://` secrets, webhook tokens.

    from numerai_autopilot.config import load_config
    config = load_config(Path("autopilot.toml"))
    executor = Executor(config.executor, ...)   # each part gets the table it uses

Every mistake is a ConfigError (numerai_autopilot.errors) naming the file, the key and the fix.
"""

from numerai_autopilot.config.loader import load_config, parse_config
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
    format_size,
    parse_duration,
    parse_size,
)
from numerai_autopilot.config.secret_manager import (
    SecretManagerClient,
    SecretResolver,
    version_name,
)
from numerai_autopilot.config.tokens import verify_token, webhook_token, webhook_url

__all__ = [
    "TOURNAMENT_IDS",
    "TOURNAMENT_NAMES",
    "AlertSettings",
    "AppConfig",
    "DataSettings",
    "ExecutorConfig",
    "LedgerSettings",
    "ModelConfig",
    "NumeraiSettings",
    "SecretManagerClient",
    "SecretResolver",
    "ServerSettings",
    "format_size",
    "load_config",
    "parse_config",
    "parse_duration",
    "parse_size",
    "verify_token",
    "version_name",
    "webhook_token",
    "webhook_url",
]
