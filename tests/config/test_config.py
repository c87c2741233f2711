"""The config loader: every mistake names the file, the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numerai_autopilot.config import (
    ExecutorConfig,
    format_size,
    load_config,
    parse_config,
    parse_duration,
    parse_size,
)
from numerai_autopilot.errors import ConfigError

GOOD = """
[server]
port = 9000
secret = "a-webhook-secret-of-32-bytes-or-more-1c5e9b"

[executor]
workers = 3
memory_limit = "2GiB"

[models.alpha]
predictor = "predictors/alpha.py:predict"
timeout = "10m"
memory = "1.5GiB"

[models.beta]
model_id = "0d6a4c8e-0000-4000-8000-000000000001"
predictor = "pkg.mod:fn"
tournament = "signals"
data_version = "v2.1"
resubmit = true
"""


def parse(text: str, env: dict[str, str] | None = None) -> object:
    return parse_config(text, source="autopilot.toml", base_dir=Path("/srv"), env=env)


def test_a_full_config_parses_with_units() -> None:
    config = parse_config(GOOD, source="autopilot.toml", base_dir=Path("/srv"))
    alpha, beta = config.models["alpha"], config.models["beta"]
    assert alpha.timeout == 600.0 and alpha.memory == int(1.5 * 1024**3)
    assert alpha.tournament_id == 8 and beta.tournament_id == 11 and beta.resubmit
    assert config.executor.workers == 3 and config.executor.memory_limit == 2 * 1024**3
    assert config.resolve_path(Path("x")) == Path("/srv/x")


def test_round_files_are_shared_locally_and_scattered_to_a_scheduler() -> None:
    assert ExecutorConfig().round_file_transfer == "shared"
    remote = ExecutorConfig(scheduler="tcp://10.0.0.5:8786")
    assert remote.round_file_transfer == "scatter"
    mounted = ExecutorConfig(scheduler="tcp://10.0.0.5:8786", data_transfer="shared")
    assert mounted.round_file_transfer == "shared"


def test_environment_overrides_the_file_and_secrets_stay_hidden() -> None:
    env = {"NUMERAI_PUBLIC_ID": "PUB", "NUMERAI_SECRET_KEY": "very-secret",
           "AUTOPILOT_SERVER_PORT": "7000", "AUTOPILOT_LEDGER_URL": "sqlite:///x.db",
           "AUTOPILOT_SECRET": "hook-secret-6d2f8a0c4e1b9357-e0a4", "UNRELATED": "1"}
    config = parse_config(GOOD, source="autopilot.toml", base_dir=Path("."), env=env)
    assert config.server.port == 7000 and config.ledger.url == "sqlite:///x.db"
    assert config.numerai.secret_key is not None
    assert config.numerai.secret_key.get_secret_value() == "very-secret"
    assert "very-secret" not in repr(config) and "hook-secret" not in repr(config)
    assert config.server.secret is not None
    assert config.server.secret.get_secret_value() == env["AUTOPILOT_SECRET"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[server]\nprt = 1", "autopilot.toml: server.prt: unknown key"),
        ("[models.a]\npredictor = 'x:y'\ntimeout = 'ten'", "models.a.timeout: 'ten' is not a duration"),
        ("[models.a]\npredictor = 'x:y'\ntimeout = -3", "models.a.timeout: must be above zero"),
        ("[models.a]\ntimeout = 3", "models.a.predictor: required"),
        ("[models.a]\npredictor = 'x:y'\ntournament = 'chess'", "models.a.tournament"),
        ("[models.a]\npredictor = 'x:y'\nmemory = 'lots'", "models.a.memory: 'lots' is not a size"),
        ("[executor]\nscheduler = '10.0.0.1'", "executor.scheduler: '10.0.0.1' is not a scheduler address"),
        ("[executor]\ndata_transfer = 'nfs'", "executor.data_transfer: Input should be 'scatter' or 'shared'"),
        ("[server]\nport = 99999", "server.port"),
        ("[models.a]\npredictor='x:y'\nmodel_id='m'\n[models.b]\npredictor='x:y'\nmodel_id='m'",
         "models.b.model_id: already used by models.a"),
        ("this is = not toml [", "autopilot.toml: not valid TOML"),
        ("base_dir = '/etc'", "'base_dir' is not a setting"),
        ("[models.s]\npredictor='x:y'\ntournament='signals'\nfallback='benchmark:v53_a'",
         "models.s: fallback: 'benchmark:v53_a' needs live benchmark models"),
        ("[models.a]\npredictor='x:y'\nenvironment='legacy'",
         ('models.a.environment: no [environments.legacy] table (none configured); add one '
          'with requirements = "envs/legacy.txt"')),
        (("[environments.legacy]\nrequirements='r.txt'\n[models.a]\nblend={b=1.0}\n"
          "environment='legacy'\n[models.b]\npredictor='x:y'"),
         "models.a.environment: a blend runs no predictor"),
        ("[environments.legacy]\npython='3.11'", "environments.legacy.requirements: required"),
        ("[environments.legacy]\nrequirements='r.txt'\npython='three'",
         "environments.legacy.python: 'three' is not a Python version"),
        ("[environments.'a b']\nrequirements='r.txt'", "'a b' cannot name an environment"),
        ("[environments.legacy]\nrequirements='r.txt'\nidle_stop='soon'",
         "environments.legacy.idle_stop: 'soon' is not a duration"),
    ],
)
def test_mistakes_name_the_file_and_key(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    assert expected in str(caught.value)


def test_missing_file_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="autopilot init"):
        load_config(tmp_path / "nope.toml")


def test_load_config_resolves_paths_against_the_file(tmp_path: Path) -> None:
    path = tmp_path / "autopilot.toml"
    path.write_text(GOOD)
    assert load_config(path).base_dir == tmp_path


def test_unknown_model_lists_the_configured_ones() -> None:
    config = parse_config(GOOD, source="autopilot.toml", base_dir=Path("."))
    with pytest.raises(ConfigError, match="no model named 'gamma' \\(configured: alpha, beta\\)"):
        config.model("gamma")


@pytest.mark.parametrize(
    ("text", "size"),
    [("4GiB", 4 * 1024**3), ("512MB", 512 * 1000**2), ("1.5G", 1_500_000_000), ("10KiB", 10240),
     (100, 100), ("2Gi", 2 * 1024**3), ("7B", 7)],
)
def test_sizes(text: object, size: int) -> None:
    assert parse_size(text) == size


def test_durations_and_size_formatting() -> None:
    assert [parse_duration(v) for v in ("600", "600s", "10m", "1.5h", "250ms", 3)] == [
        600, 600, 600, 5400, 0.25, 3]
    assert format_size(4 * 1024**3) == "4 GiB" and format_size(3 * 1024**2) == "3 MiB"


toml_values = st.one_of(
    st.integers(), st.text(max_size=20), st.booleans(), st.floats(allow_nan=False),
    st.lists(st.integers(), max_size=3),
)


@settings(max_examples=200, deadline=None)
@given(
    table=st.sampled_from(["server", "ledger", "data", "executor", "numerai", "alerts", "models.m"]),
    key=st.sampled_from(["port", "url", "workers", "memory_limit", "timeout", "predictor",
                         "secret", "keep_rounds", "scheduler", "memory", "tournament", "zzz"]),
    value=toml_values,
)
def test_any_value_either_loads_or_gives_a_config_error(table: str, key: str, value: object) -> None:
    import json

    literal = json.dumps(value) if not isinstance(value, bool) else str(value).lower()
    text = f"[{table}]\n{key} = {literal}\n"
    if table == "models.m" and key != "predictor":
        text += "predictor = 'x.py:f'\n"
    try:
        parse(text)
    except ConfigError as exc:
        assert str(exc).startswith("autopilot.toml")


def test_an_unknown_key_names_the_nearest_and_the_environment_is_blamed_for_its_values(
    tmp_path: Path
) -> None:
    def error(text: str, env: dict[str, str] | None = None) -> str:
        with pytest.raises(ConfigError) as raised:
            parse_config(text, source="a.toml", base_dir=tmp_path, env=env)
        return str(raised.value)

    assert error("[server]\nprot = 9\n") == "a.toml: server.prot: unknown key; did you mean 'port'?"
    assert "models.a.timout: unknown key; did you mean 'timeout'?" in error(
        "[models.a]\npredictor = 'x.py:f'\ntimout = '1m'\n")
    assert "did you mean 'executor'?" in error("[exector]\nworkers = 2\n")
    blamed = error("[server]\nport = 8000\n", {"AUTOPILOT_SERVER_PORT": "abc"})
    assert blamed.startswith("environment variable AUTOPILOT_SERVER_PORT (for server.port): ")
    # an empty variable is unset: the file's value stands
    config = parse_config("[server]\nport = 8001\n", source="a.toml", base_dir=tmp_path,
                          env={"AUTOPILOT_SERVER_PORT": "", "AUTOPILOT_SECRET": ""})
    assert config.server.port == 8001 and config.server.secret is None
