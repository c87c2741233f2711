"""The webhooks registered on Numerai for the configured models: read, compare, set, clear.

Reading a model's current webhook uses the `submissionWebhook` field of the account's
models. Numerai's public documentation lists only the mutation (`setSubmissionWebhook`);
where the API does not answer the field, `registered_webhooks` returns None and callers
say that the previous registration cannot be shown.

    before = await registered_webhooks(config.numerai, http)   # {model_id: url} or None
    check_webhook(before[model_id], model_id, config.server.webhook_secrets())  # None: ours
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, unquote, urlsplit

import httpx

from numerai_autopilot.config import AppConfig, NumeraiSettings, verify_token
from numerai_autopilot.errors import ConfigError
from numerai_autopilot.numerai import NumeraiClient, RetryPolicy

_TOKEN = re.compile(r"(token=)[^&#\s]+")


def redact(url: str | None) -> str:
    """A webhook URL fit to print: its token replaced by `***`.

    >>> redact("https://x.run.app/pred/abc?token=9f2e")
    'https://x.run.app/pred/abc?token=***'
    """
    return "(none)" if not url else _TOKEN.sub(r"\1***", url)


def current_secret(config: AppConfig) -> str:
    """The secret new webhook tokens are made with; ConfigError when it is not set."""
    if config.server.secret is None:
        raise ConfigError(
            f"{config.source}: server.secret: required to make webhook tokens; set it or "
            "AUTOPILOT_SECRET"
        )
    return config.server.secret.get_secret_value()


async def registered_webhooks(
    settings: NumeraiSettings, http: httpx.AsyncClient
) -> dict[str, str | None] | None:
    """Model id -> the webhook Numerai has for it, or None when Numerai does not say;
    transient failures are retried for up to 30 s."""
    client = NumeraiClient.from_settings(http, settings, RetryPolicy(deadline_s=30.0))
    return await client.submission_webhooks()


def check_webhook(url: str | None, model_id: str, secrets: list[str],
                  base_url: str | None = None) -> str | None:
    """What is wrong with a registered webhook (path, token made with `secrets[0]`, host),
    or None when it is this server's webhook for the model."""
    if not url:
        return "no webhook registered"
    parts = urlsplit(url)
    if unquote(parts.path.rstrip("/").rsplit("/", 1)[-1]) != model_id or "/pred/" not in parts.path:
        return f"registered {redact(url)} is not this model's /pred/ URL"
    tokens = parse_qs(parts.query).get("token") or [""]
    if not verify_token(tokens[0], model_id, secrets):
        return "its token was not made with server.secret"
    if not verify_token(tokens[0], model_id, secrets[:1]):
        return "its token uses a previous secret (rotation not finished)"
    if base_url and not url.startswith(base_url.rstrip("/") + "/pred/"):
        return f"registered {redact(url)} is not at {base_url}"
    return None
