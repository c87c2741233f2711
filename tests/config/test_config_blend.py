"""Blend models in the config: members, tournaments, weights and cycles, each mistake named."""

from __future__ import annotations

from pathlib import Path

import pytest

from numerai_autopilot.config import AppConfig, parse_config
from numerai_autopilot.errors import ConfigError
from numerai_autopilot.runtime import load_predictors

MEMBERS = """
[models.alpha]
predictor = "mypackage.alpha:predict"
data_version = "v5.2"

[models.beta]
predictor = "mypackage.beta:predict"
data_version = "v5.2"

[models.sig]
predictor = "mypackage.sig:predict"
tournament = "signals"
"""


def parse(extra: str) -> AppConfig:
    return parse_config(MEMBERS + extra, source="autopilot.toml", base_dir=Path("/srv"))


def test_a_blend_parses_with_its_defaults_and_its_members_data_version() -> None:
    config = parse('[models.ens]\nblend = { alpha = 0.7, beta = 0.3 }\n')
    ens = config.models["ens"]
    assert ens.blend == {"alpha": 0.7, "beta": 0.3} and ens.predictor is None
    assert ens.blend_missing == "renormalize" and ens.blend_wait == 1800.0
    assert ens.data_version == "v5.2"  # its members' data: no other version downloaded
    assert "ens" not in load_predictors(config)  # no predictor to load


@pytest.mark.parametrize(("extra", "expected"), [
    ('[models.ens]\nblend = { alpha = 0.5, ens2 = 0.5 }\n[models.ens2]\nblend = { beta = 1, ens = 1 }',
     ("autopilot.toml: models.ens.blend: blend cycle: ens -> ens2 -> ens; a blend cannot "
      "include itself, directly or through another blend")),
    ("[models.ens]\nblend = { alpha = 1, ens = 1 }",
     "autopilot.toml: models.ens.blend: blend cycle: ens -> ens"),
    ("[models.ens]\nblend = { alpha = 0.5, sig = 0.5 }",
     ("autopilot.toml: models.ens.blend: 'sig' is a signals model and 'ens' a classic one; a "
      "blend's members are models of its own tournament: remove 'sig' or set "
      "models.ens.tournament")),
    ("[models.ens]\nblend = { alpha = 0.5, gamma = 0.5 }",
     ("autopilot.toml: models.ens.blend: 'gamma' is not a configured model (configured: alpha, "
      "beta, sig)")),
    ("[models.ens]\nblend = { alpha = 0.5, beta = -0.5 }",
     "autopilot.toml: models.ens: blend: beta = -0.5: a weight must be above zero"),
    ("[models.ens]\nblend = {}", "autopilot.toml: models.ens: blend: empty; name the models"),
    ('[models.ens]\nblend = { alpha = 1 }\npredictor = "x.py:f"',
     "autopilot.toml: models.ens.predictor: a blend has no predictor of its own"),
    ("[models.ens]\ntimeout = 3",
     "autopilot.toml: models.ens.predictor: required; add it, or blend = {"),
    ('[models.ens]\nblend = { alpha = 1 }\nblend_missing = "skip"',
     "autopilot.toml: models.ens.blend_missing: Input should be 'renormalize' or 'fail'"),
    ("[models.ens]\nblend = { alpha = 1 }\nblend_wait = 0",
     "autopilot.toml: models.ens.blend_wait: must be above zero"),
    ("[models.ens]\nblend = { alpha = 1 }\n[server]\nmax_concurrent_runs = 1",
     ("autopilot.toml: server.max_concurrent_runs: 1 leaves no run for the members of 1 blend "
      "model(s), each of which holds one while it waits for them; set it to 2 or more")),
])
def test_blend_mistakes_name_the_model_the_key_and_the_fix(extra: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(extra)
    assert expected in str(caught.value)
    assert len(str(caught.value).splitlines()) == 1  # the mistake, not its consequences
