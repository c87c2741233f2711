"""The `.env` file beside autopilot.toml (the environment wins over it), and which keys of a
config file hold a secret's value."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from numerai_autopilot.config import (
    environment,
    literal_secrets,
    load_config,
    parse_config,
    read_env_file,
    write_env_file,
)
from numerai_autopilot.errors import ConfigError

SECRET = "env-file-webhook-secret-2e7c9a4f1d6b8035"
OTHER = "process-webhook-secret-9a1c5e7f3b0d2468"


def test_the_file_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    config = tmp_path / "autopilot.toml"
    config.write_text("[server]\nport = 8001\n")
    (tmp_path / ".env").write_text(
        "# a comment\n\n"
        f"AUTOPILOT_SECRET={SECRET}\n"
        "export NUMERAI_PUBLIC_ID='PUBLIC ID'\n"
        'NUMERAI_SECRET_KEY="quoted # not a comment"\n'
        "AUTOPILOT_SERVER_PORT=8002  # a comment after a value\n"
        "AUTOPILOT_ADMIN_TOKEN=\n"
    )
    env = environment(config, {"AUTOPILOT_SERVER_PORT": "8003", "NUMERAI_PUBLIC_ID": ""})
    assert env == {"AUTOPILOT_SECRET": SECRET, "NUMERAI_PUBLIC_ID": "PUBLIC ID",
                   "NUMERAI_SECRET_KEY": "quoted # not a comment",
                   "AUTOPILOT_SERVER_PORT": "8003", "AUTOPILOT_ADMIN_TOKEN": ""}
    loaded = load_config(config, env=env)
    assert loaded.server.port == 8003 and loaded.server.admin_token is None
    assert loaded.server.webhook_secrets() == [SECRET]
    over = load_config(config, env=environment(config, {"AUTOPILOT_SECRET": OTHER}))
    assert over.server.webhook_secrets() == [OTHER]
    assert environment(tmp_path / "elsewhere" / "autopilot.toml", {"A": "1"}) == {"A": "1"}


def test_a_bad_line_is_named_by_number_not_by_its_text(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text(f"AUTOPILOT_SECRET={SECRET}\n{SECRET}\n")
    with pytest.raises(ConfigError) as raised:
        read_env_file(path)
    assert str(raised.value) == f"{path}: line 2 is not NAME=value; fix it or remove it"


def test_written_for_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("old")
    path.chmod(0o644)
    write_env_file(path, {"AUTOPILOT_SECRET": SECRET}, "what this is\n\nA=")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == f"# what this is\n#\n# A=\nAUTOPILOT_SECRET={SECRET}\n"
    assert read_env_file(path) == {"AUTOPILOT_SECRET": SECRET}


def test_literal_secrets_names_each_key_and_where_it_belongs(tmp_path: Path) -> None:
    path = tmp_path / "autopilot.toml"
    path.write_text(
        '[numerai]\npublic_id = "PUB"\nsecret_key = "sm://projects/p/secrets/key"\n'
        f'[server]\nsecret = "{SECRET}"\nprevious_secrets = ["sm://projects/p/secrets/s/versions/2", '
        f'"{OTHER}"]\nadmin_token = ""\ndashboard_password = "pw"\n'
        '[ledger]\nurl = "postgresql+psycopg://user:pw@db.example/autopilot"\n'
    )
    assert literal_secrets(path) == {
        "numerai.public_id": "NUMERAI_PUBLIC_ID",
        "server.secret": "AUTOPILOT_SECRET",
        "server.previous_secrets": "AUTOPILOT_PREVIOUS_SECRETS",
        "server.dashboard_password": "AUTOPILOT_SERVER_DASHBOARD_PASSWORD",
        "ledger.url": "PGPASSWORD",
    }
    path.write_text('[numerai]\nsecret_key = "sm://projects/p/secrets/key"\n'
                    '[ledger]\nurl = "postgresql+psycopg://user@/autopilot?host=/cloudsql/x"\n')
    assert literal_secrets(path) == {}


def test_alert_urls_from_the_environment_space_separated() -> None:
    """Apprise URLs hold tokens: they can come from the environment instead of the file."""
    urls = "slack://TokenA/TokenB/TokenC mailto://user:pass@example.com?to=a@x.org,b@x.org"
    config = parse_config("", source="a.toml", base_dir=Path("."),
                          env={"AUTOPILOT_ALERTS_URLS": f" {urls} "})
    assert [u.get_secret_value() for u in config.alerts.urls] == urls.split()
