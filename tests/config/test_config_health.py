"""`[health]` and `models.NAME.on_suspect`: defaults, and the mistakes refused with the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from numerai_autopilot.config import parse_config
from numerai_autopilot.errors import ConfigError


def parse(text: str) -> object:
    return parse_config(text, source="autopilot.toml", base_dir=Path("/srv"))


def test_defaults_and_a_health_table() -> None:
    config = parse_config('[health]\nrounds = 5\ncorr_margin = 0.05\n'
                          '[models.alpha]\npredictor = "m.pkl"\n',
                          source="autopilot.toml", base_dir=Path("/srv"))
    assert config.models["alpha"].on_suspect == "warn"
    assert (config.health.rounds, config.health.min_rounds) == (5, 3)
    assert config.health.corr_margin == 0.05 and config.health.stat_margin == 0.05


def test_fallback_on_suspect_needs_a_fallback() -> None:
    with pytest.raises(ConfigError) as caught:
        parse('[models.alpha]\npredictor = "m.pkl"\non_suspect = "fallback"\n')
    message = str(caught.value)
    assert "models.alpha" in message and 'on_suspect = "fallback" needs a fallback' in message
    config = parse_config('[models.alpha]\npredictor = "m.pkl"\non_suspect = "fallback"\n'
                          'fallback = "benchmark:v53_lgbm_ender20"\n',
                          source="autopilot.toml", base_dir=Path("/srv"))
    assert config.models["alpha"].on_suspect == "fallback"


@pytest.mark.parametrize(("text", "expected"), [
    ('[models.alpha]\npredictor = "m.pkl"\non_suspect = "ignore"\n', "models.alpha.on_suspect"),
    ("[health]\nrounds = 2\nmin_rounds = 3\n", "min_rounds (3) is above rounds (2)"),
    ("[health]\ncorr_margin = -0.1\n", "health.corr_margin"),
])
def test_mistakes_name_the_key(text: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        parse(text)
