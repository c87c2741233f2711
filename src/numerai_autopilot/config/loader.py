"""Read `autopilot.toml`, apply environment overrides, and explain every mistake.

Environment overrides: `AUTOPILOT_<TABLE>_<KEY>` (e.g. `AUTOPILOT_SERVER_PORT=9000`,
`AUTOPILOT_LEDGER_URL=postgresql+psycopg://...`), plus the conventional
`NUMERAI_PUBLIC_ID` / `NUMERAI_SECRET_KEY` for the keys, `AUTOPILOT_SECRET` for the
webhook secret, `AUTOPILOT_PREVIOUS_SECRETS` (comma separated) for the secrets of a rotation
and `AUTOPILOT_ADMIN_TOKEN`; `AUTOPILOT_ALERTS_URLS` takes the alert URLs (which hold tokens)
separated by spaces. The environment wins over the file; an empty variable is unset.
The commands pass this process's environment over the `.env` file beside the config
(`env_file.py`). Values written as `sm://projects/P/secrets/NAME/versions/latest` are then
read from Secret Manager (`secret_manager.py`). Every mistake is a ConfigError naming the
file, the key and the fix.

Secrets belong in the environment, not in the file: `literal_secrets` names the keys of a
file that hold one (a deploy refuses such a file, which would go into the image).
"""

from __future__ import annotations

import difflib
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pydantic

from numerai_autopilot.config.models import AppConfig
from numerai_autopilot.config.secret_manager import PREFIX, SecretResolver
from numerai_autopilot.errors import ConfigError

ENV_PREFIX = "AUTOPILOT_"
_TABLES = ("numerai", "server", "ledger", "data", "executor", "alerts")
_SHORTCUTS = {
    "NUMERAI_PUBLIC_ID": ("numerai", "public_id"),
    "NUMERAI_SECRET_KEY": ("numerai", "secret_key"),
    "AUTOPILOT_SECRET": ("server", "secret"),
    "AUTOPILOT_PREVIOUS_SECRETS": ("server", "previous_secrets"),
    "AUTOPILOT_ADMIN_TOKEN": ("server", "admin_token"),
}
# Read by `autopilot deploy cloudrun --setup` (the Cloud SQL password), not a config key.
_NOT_SETTINGS = frozenset({"AUTOPILOT_LEDGER_PASSWORD"})


def load_config(
    path: Path, env: Mapping[str, str] | None = None, *, secrets: SecretResolver | None = None
) -> AppConfig:
    """Load `path` (TOML) with overrides from `env` (default: none); `sm://` values via `secrets`.

    Raises ConfigError when the file is missing or unreadable, or for any invalid value.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such file; create one with `autopilot init` or pass --config PATH"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from exc
    return parse_config(
        text, source=str(path), base_dir=path.resolve().parent, env=env, secrets=secrets
    )


def parse_config(
    text: str,
    *,
    source: str,
    base_dir: Path,
    env: Mapping[str, str] | None = None,
    secrets: SecretResolver | None = None,
) -> AppConfig:
    """Parse TOML text into an AppConfig; errors name the file, the key and the fix."""
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    for reserved in ("base_dir", "source"):
        if reserved in data:
            raise ConfigError(f"{source}: '{reserved}' is not a setting; remove it")
    from_env = _apply_env(data, env or {})
    try:
        (secrets or SecretResolver()).resolve_tree(data)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    try:
        return AppConfig.model_validate({**data, "base_dir": base_dir, "source": source})
    except pydantic.ValidationError as exc:
        raise ConfigError(_explain(exc, source, from_env)) from None


def literal_secrets(path: Path) -> dict[str, str]:
    """The keys of the config at `path` that hold a secret's value (not a `sm://` reference)
    -> the environment variable to set instead, e.g. {"server.secret": "AUTOPILOT_SECRET"}.

    A ledger URL with a password counts (its password belongs in PGPASSWORD).
    :raises ConfigError: the file cannot be read or is not TOML.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    def table(name: str) -> dict[str, Any]:
        value = data.get(name)
        return value if isinstance(value, dict) else {}

    found: dict[str, str] = {}
    for variable, (name, key) in _SHORTCUTS.items():
        value = table(name).get(key)
        values = value if isinstance(value, list) else [value]
        if any(isinstance(v, str) and v and not v.startswith(PREFIX) for v in values):
            found[f"{name}.{key}"] = variable
    urls = table("alerts").get("urls")
    if isinstance(urls, list) and any(isinstance(u, str) and u and not u.startswith(PREFIX)
                                      for u in urls):
        found["alerts.urls"] = "AUTOPILOT_ALERTS_URLS"  # apprise URLs carry their tokens
    if table("server").get("dashboard_password"):
        found["server.dashboard_password"] = "AUTOPILOT_SERVER_DASHBOARD_PASSWORD"
    url = table("ledger").get("url")
    try:
        if isinstance(url, str) and "://" in url and urlsplit(url).password:
            found["ledger.url"] = "PGPASSWORD"
    except ValueError:  # not a URL urllib can read: load_config says what is wrong with it
        pass
    return found


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> dict[tuple[str, str], str]:
    """Put `env`'s overrides into `data`; returns which variable set each (table, key). An
    empty variable counts as unset (`AUTOPILOT_SERVER_SECRET=` overrides nothing)."""
    applied: dict[tuple[str, str], str] = {}
    for name, (table, key) in _SHORTCUTS.items():
        if env.get(name):
            data.setdefault(table, {})[key] = env[name]
            applied[(table, key)] = name
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name in _SHORTCUTS or name in _NOT_SETTINGS \
                or not value:
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        section = next((t for t in _TABLES if rest.startswith(t + "_")), None)
        if section is not None:
            key = rest[len(section) + 1 :]
            # alerts.urls hold tokens, so they belong here: "slack://T/B/C mailto://u:p@h"
            # (an URL holds no space, and may hold a comma)
            data.setdefault(section, {})[key] = value.split() if (section, key) == (
                "alerts", "urls") else value
            applied[(section, key)] = name
    return applied


def _explain(exc: pydantic.ValidationError, source: str,
             from_env: Mapping[tuple[str, str], str]) -> str:
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        loc = tuple(str(part) for part in error["loc"])
        key = ".".join(loc) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            near = difflib.get_close_matches(loc[-1], _keys_at(loc[:-1]), n=1)
            message = (f"unknown key; did you mean '{near[0]}'?" if near else
                       "unknown key; check its spelling against the README's configuration "
                       "table")
        elif error["type"] == "missing":
            message = "required; add it"
        variable = from_env.get((loc[0], loc[1])) if len(loc) >= 2 else None
        if variable is not None:  # the value came from the environment, not the file
            lines.append(f"environment variable {variable} (for {key}): {message}")
        elif loc:
            lines.append(f"{source}: {key}: {message}")
        else:  # a check across tables: its message starts with the key it names
            lines.append(f"{source}: {message}")
    return "\n".join(lines)


def _keys_at(loc: tuple[str, ...]) -> list[str]:
    """The valid keys of the table at `loc` (e.g. ("models", "alpha")), [] if unknown."""
    model: type[pydantic.BaseModel] = AppConfig
    named: type[pydantic.BaseModel] | None = None  # inside `models`: the next part is a name
    for part in loc:
        if named is not None:
            model, named = named, None
            continue
        field = model.model_fields.get(part)
        annotation = field.annotation if field is not None else None
        if typing.get_origin(annotation) is dict:
            annotation = typing.get_args(annotation)[1]
            if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
                named = annotation
                continue
        if not (isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel)):
            return []
        model = annotation
    if named is not None:
        return []
    return [name for name in model.model_fields if name not in ("base_dir", "source", "name")]
