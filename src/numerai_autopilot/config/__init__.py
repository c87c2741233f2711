"""Configuration: `autopilot.toml` plus environment overrides.

    from numerai_autopilot.config import load_config
    config = load_config(Path("autopilot.toml"))
"""

from numerai_autopilot.config.loader import ENV_PREFIX, load_config, parse_config
from numerai_autopilot.config.models import (
    AlertSettings,
    AppConfig,
    DataSettings,
    ExecutorConfig,
    LedgerSettings,
    ModelConfig,
    NumeraiSettings,
    ServerSettings,
    TournamentName,
)

__all__ = [
    "ENV_PREFIX",
    "AlertSettings",
    "AppConfig",
    "DataSettings",
    "ExecutorConfig",
    "LedgerSettings",
    "ModelConfig",
    "NumeraiSettings",
    "ServerSettings",
    "TournamentName",
    "load_config",
    "parse_config",
]
