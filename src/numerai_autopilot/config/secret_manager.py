"""Config values read from Google Secret Manager: `sm://projects/P/secrets/NAME/versions/V`.

Any string value in `autopilot.toml` (or an `AUTOPILOT_*` / `NUMERAI_*` override) that starts
with `sm://` is replaced by that secret version's payload when the config is loaded. A
reference without `/versions/...` means `versions/latest`. The client library is the optional
extra `google-cloud-secret-manager` (`pip install 'numerai-autopilot[gcp]'`), imported only
when a reference is present; tests inject any object with the client's `access_secret_version`.

    [numerai]
    secret_key = "sm://projects/my-project/secrets/numerai-secret-key/versions/latest"
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from numerai_autopilot.errors import ConfigError

PREFIX = "sm://"
_REFERENCE = re.compile(r"^projects/([^/]+)/secrets/([^/]+)(?:/versions/([^/]+))?$")


class SecretManagerClient(Protocol):
    """The one method of `google.cloud.secretmanager.SecretManagerServiceClient` we use."""

    def access_secret_version(self, request: dict[str, str]) -> Any: ...


def version_name(reference: str) -> str:
    """The secret version's resource name for an `sm://` reference.

    >>> version_name("sm://projects/p/secrets/key")
    'projects/p/secrets/key/versions/latest'
    """
    match = _REFERENCE.match(reference.removeprefix(PREFIX))
    if not reference.startswith(PREFIX) or match is None:
        raise ValueError(
            f"{reference!r} is not a Secret Manager reference; write "
            "'sm://projects/PROJECT/secrets/NAME/versions/latest'"
        )
    project, name, version = match.groups()
    return f"projects/{project}/secrets/{name}/versions/{version or 'latest'}"


def _default_client() -> SecretManagerClient:
    try:
        from google.cloud import secretmanager  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        raise ConfigError(
            "Secret Manager references (sm://...) need the gcp extra: "
            "pip install 'numerai-autopilot[gcp]'"
        ) from None
    client: SecretManagerClient = secretmanager.SecretManagerServiceClient()
    return client


class SecretResolver:
    """Reads `sm://` references, each version once, through `client` (default: Google's,
    made on first use)."""

    def __init__(self, client: SecretManagerClient | None = None) -> None:
        self._client = client
        self._cache: dict[str, str] = {}

    def resolve(self, reference: str, key: str) -> str:
        """The payload of `reference`; `key` (e.g. `numerai.secret_key`) names it in errors."""
        try:
            name = version_name(reference)
        except ValueError as exc:
            raise ConfigError(f"{key}: {exc}") from None
        if name not in self._cache:
            if self._client is None:
                try:
                    self._client = _default_client()
                except ConfigError as exc:
                    raise ConfigError(f"{key}: {exc}") from None
            try:
                response = self._client.access_secret_version(request={"name": name})
                payload: bytes = response.payload.data
            except ConfigError:
                raise
            except Exception as exc:
                # The client's errors name the resource, never the payload.
                raise ConfigError(
                    f"{key}: cannot read {name} from Secret Manager ({type(exc).__name__}: "
                    f"{exc}); check that it exists and that this service account has "
                    "roles/secretmanager.secretAccessor on it"
                ) from exc
            self._cache[name] = payload.decode("utf-8").strip()
        return self._cache[name]

    def resolve_tree(self, data: dict[str, Any], prefix: str = "") -> None:
        """Replace every `sm://` string in nested tables (and lists) of `data`, in place."""
        for key, value in data.items():
            path = f"{prefix}{key}"
            if isinstance(value, dict):
                self.resolve_tree(value, f"{path}.")
            elif isinstance(value, list):
                data[key] = [
                    self.resolve(item, f"{path}[{i}]") if _is_reference(item) else item
                    for i, item in enumerate(value)
                ]
            elif _is_reference(value):
                data[key] = self.resolve(value, path)


def _is_reference(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)
