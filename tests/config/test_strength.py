"""What a server secret, a previous secret and an admin token must be: 32 bytes or more of
something random. Short, empty and placeholder values are refused, from the file or the
environment, with the way to make one; the value itself is never in the message."""

from __future__ import annotations

from pathlib import Path

import pytest

from numerai_autopilot.config import MAKE_ONE, check_secret, parse_config
from numerai_autopilot.errors import ConfigError

GOOD = "Xq3vJ0pLr9Tz_8wKbE2nYh5sMfA7dCgU1oRiVt4lNe6"  # secrets.token_urlsafe(32)
OLD = "old-secret-that-is-long-enough-0b7e4d1a9c"


def error(text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as raised:
        parse_config(text, source="a.toml", base_dir=Path("/srv"), env=env)
    return str(raised.value)


@pytest.mark.parametrize(("value", "says"), [
    ("", "empty"),
    ("   ", "empty"),
    ("CHANGE-ME", "a placeholder, not a secret"),
    ("change_me_to_something_long_and_random_please", "a placeholder, not a secret"),
    ("your-secret-goes-here-0123456789abcdef", "a placeholder, not a secret"),
    ("x" * 40, "a placeholder, not a secret"),
    ("s3cret-s3cret-s3cret-s3cret-s3cret", "a placeholder, not a secret"),
    ("short-but-random-9f3a", "21 bytes, too short to be safe: it needs at least 32"),
])
def test_weak_secrets_are_refused_with_how_to_make_one(value: str, says: str) -> None:
    message = error(f'[server]\nsecret = "{value}"\n')
    assert message.startswith(f"a.toml: server.secret: {says}"), message
    assert MAKE_ONE in message
    if value.strip():
        assert value not in message


def test_every_secret_key_is_checked_from_the_file_and_the_environment() -> None:
    assert error(f'[server]\nsecret = "{GOOD}"\nprevious_secrets = ["{OLD}", ""]\n') == (
        f"a.toml: server.previous_secrets: entry 2: empty; make one with {MAKE_ONE}")
    assert error("", {"AUTOPILOT_ADMIN_TOKEN": "admin"}).startswith(
        "environment variable AUTOPILOT_ADMIN_TOKEN (for server.admin_token): 5 bytes")
    short = error(f'[server]\nsecret = "{GOOD}"\n', {"AUTOPILOT_SECRET": "hunter2-hunter2"})
    assert short.startswith("environment variable AUTOPILOT_SECRET (for server.secret): 15 bytes")
    assert "hunter2" not in short
    # An empty variable is unset: the file's secret stands, and no secret at all is allowed
    # (commands that make no tokens need none; `serve` asks for one).
    config = parse_config(f'[server]\nsecret = "{GOOD}"\n', source="a.toml", base_dir=Path("."),
                          env={"AUTOPILOT_SECRET": "", "AUTOPILOT_SERVER_SECRET": ""})
    assert config.server.webhook_secrets() == [GOOD]
    assert parse_config("", source="a.toml", base_dir=Path(".")).server.secret is None


def test_previous_secrets_from_the_environment_comma_separated() -> None:
    other = "another-old-secret-long-enough-5c2a8e"
    for name in ("AUTOPILOT_PREVIOUS_SECRETS", "AUTOPILOT_SERVER_PREVIOUS_SECRETS"):
        config = parse_config("", source="a.toml", base_dir=Path("."),
                              env={"AUTOPILOT_SECRET": GOOD, name: f"{OLD}, {other},"})
        assert config.server.webhook_secrets() == [GOOD, OLD, other]
    blamed = error("", {"AUTOPILOT_PREVIOUS_SECRETS": f"{OLD},tiny-one"})
    assert blamed.startswith("environment variable AUTOPILOT_PREVIOUS_SECRETS "
                             "(for server.previous_secrets): entry 2: 8 bytes")


def test_a_random_secret_passes() -> None:
    import secrets

    for _ in range(200):
        for value in (secrets.token_urlsafe(32), secrets.token_hex(32)):
            assert check_secret(value) == value
