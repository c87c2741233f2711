"""sm:// values in the config, resolved through an injected Secret Manager client object."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from numerai_autopilot.config import SecretResolver, load_config, parse_config, version_name
from numerai_autopilot.errors import ConfigError

TEXT = """
[numerai]
secret_key = "sm://projects/p1/secrets/numerai-secret-key/versions/latest"
[server]
secret = "sm://projects/p1/secrets/webhook-secret"
previous_secrets = ["sm://projects/p1/secrets/webhook-secret/versions/3", "plain-old-secret-f0759e3930039082"]
[models.alpha]
predictor = "x.py:f"
"""


@dataclass
class Payload:
    data: bytes


@dataclass
class Response:
    payload: Payload


class RecordingClient:
    """Answers like SecretManagerServiceClient.access_secret_version; records each request."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.requests: list[dict[str, str]] = []

    def access_secret_version(self, request: dict[str, str]) -> Any:
        self.requests.append(request)
        if request["name"] not in self.values:
            raise LookupError(f"404 Secret [{request['name']}] not found or has no versions")
        return Response(Payload(self.values[request["name"]].encode() + b"\n"))


def test_sm_references_are_read_once_each_from_secret_manager() -> None:
    client = RecordingClient({
        "projects/p1/secrets/numerai-secret-key/versions/latest": "the-secret-key",
        "projects/p1/secrets/webhook-secret/versions/latest": "hook-secret-5b0e8d2a9c4f7163-9d2e",
        "projects/p1/secrets/webhook-secret/versions/3": "older-hook-secret-a4c9e1f07d3b5286",
        "projects/p1/secrets/public-id/versions/latest": "PUBLICID-7c3f0a9e5d1b8246-a1f30b9e",
    })
    env = {"NUMERAI_PUBLIC_ID": "sm://projects/p1/secrets/public-id",
           "AUTOPILOT_ADMIN_TOKEN": "sm://projects/p1/secrets/public-id/versions/latest"}
    config = parse_config(TEXT, source="a.toml", base_dir=Path("."), env=env,
                          secrets=SecretResolver(client))
    assert config.numerai.secret_key is not None and config.numerai.public_id is not None
    assert config.numerai.secret_key.get_secret_value() == "the-secret-key"
    assert config.numerai.public_id.get_secret_value() == "PUBLICID-7c3f0a9e5d1b8246-a1f30b9e"
    assert config.server.admin_token is not None
    assert config.server.admin_token.get_secret_value() == "PUBLICID-7c3f0a9e5d1b8246-a1f30b9e"
    assert [s.get_secret_value() for s in config.server.previous_secrets] == [
        "older-hook-secret-a4c9e1f07d3b5286", "plain-old-secret-f0759e3930039082"]
    assert sorted(r["name"] for r in client.requests) == [  # one request per version
        "projects/p1/secrets/numerai-secret-key/versions/latest",
        "projects/p1/secrets/public-id/versions/latest",
        "projects/p1/secrets/webhook-secret/versions/3",
        "projects/p1/secrets/webhook-secret/versions/latest",
    ]


def test_unreadable_secret_names_the_key_and_the_fix_not_a_value() -> None:
    client = RecordingClient({})
    with pytest.raises(ConfigError) as caught:
        parse_config(TEXT, source="a.toml", base_dir=Path("."), secrets=SecretResolver(client))
    message = str(caught.value)
    assert message.startswith("a.toml: numerai.secret_key: cannot read "
                              "projects/p1/secrets/numerai-secret-key/versions/latest")
    assert "secretAccessor" in message


def test_malformed_reference_and_missing_extra(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"server.secret: 'sm://webhook' is not a Secret Manager"):
        parse_config('[server]\nsecret = "sm://webhook"\n', source="a.toml", base_dir=tmp_path,
                     secrets=SecretResolver(RecordingClient({})))
    path = tmp_path / "autopilot.toml"
    path.write_text(TEXT)

    # The default client factory imports google-cloud-secret-manager; without the extra
    # installed (as in this environment) the message says how to install it.
    try:
        import google.cloud.secretmanager  # type: ignore[import-not-found,unused-ignore]  # noqa: F401
        resolver = None
    except ImportError:
        resolver = SecretResolver()
    if resolver is not None:
        with pytest.raises(ConfigError) as caught:
            load_config(path, secrets=resolver)
        assert str(caught.value) == (
            f"{path}: numerai.secret_key: Secret Manager references (sm://...) need the gcp "
            "extra: pip install 'numerai-autopilot[gcp]'")
    assert version_name("sm://projects/p/secrets/n") == "projects/p/secrets/n/versions/latest"
