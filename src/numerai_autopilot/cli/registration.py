"""The webhooks registered on Numerai for the configured models: read, compare, set, clear.

Reading a model's current webhook uses the `submissionWebhook` field of the account's
models. Numerai's public documentation lists only the mutation (`setSubmissionWebhook`);
where the API does not answer the field, `registered_webhooks` returns None and callers
say that the previous registration cannot be shown.

    ids = await ModelIds(config.models, config.source).checked(client)   # name -> id
    before = await registered_webhooks(config, http)      # {model_id: url or None} or None
    await client.set_submission_webhook(ids["alpha"], webhook_url(base, ids["alpha"], secret))
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

import httpx

from numerai_autopilot.config import AppConfig, verify_token
from numerai_autopilot.errors import ConfigError
from numerai_autopilot.numerai import NumeraiClient, RetryPolicy

_TOKEN = re.compile(r"(token=)[^&#\s]+")


def redact(url: str | None) -> str:
    """A webhook URL fit to print: its token replaced by `***`.

    >>> redact("https://x.run.app/pred/abc?token=9f2e")
    'https://x.run.app/pred/abc?token=***'
    """
    return "(none)" if not url else _TOKEN.sub(r"\1***", url)


def server_secrets(config: AppConfig) -> list[str]:
    """The current webhook secret, then previous ones; ConfigError when none is set."""
    if config.server.secret is None:
        raise ConfigError(
            f"{config.source}: server.secret: required to make webhook tokens; set it or "
            "AUTOPILOT_SECRET"
        )
    return config.server.webhook_secrets()


async def registered_webhooks(
    config: AppConfig, http: httpx.AsyncClient
) -> dict[str, str | None] | None:
    """Model id -> the webhook Numerai has for it, or None when Numerai does not say;
    transient failures are retried for up to 30 s."""
    client = NumeraiClient.from_settings(http, config.numerai, RetryPolicy(deadline_s=30.0))
    return await client.submission_webhooks()


@dataclass(frozen=True, slots=True)
class WebhookCheck:
    """Whether a registered URL is this server's webhook for the model."""

    ok: bool
    problem: str = ""


def check_webhook(url: str | None, model_id: str, secrets: list[str],
                  base_url: str | None = None) -> WebhookCheck:
    """Compare a registered webhook with ours: path, token (any current or previous secret)."""
    if not url:
        return WebhookCheck(False, "no webhook registered")
    parts = urlsplit(url)
    if unquote(parts.path.rstrip("/").rsplit("/", 1)[-1]) != model_id or "/pred/" not in parts.path:
        return WebhookCheck(False, f"registered {redact(url)} is not this model's /pred/ URL")
    tokens = parse_qs(parts.query).get("token") or [""]
    if not verify_token(tokens[0], model_id, secrets):
        return WebhookCheck(False, "its token was not made with server.secret")
    if not verify_token(tokens[0], model_id, secrets[:1]):
        return WebhookCheck(False, "its token uses a previous secret (rotation not finished)")
    if base_url and not url.startswith(base_url.rstrip("/") + "/pred/"):
        return WebhookCheck(False, f"registered {redact(url)} is not at {base_url}")
    return WebhookCheck(True)
