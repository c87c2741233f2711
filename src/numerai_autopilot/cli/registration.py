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

_QUERY_TOKEN = re.compile(r"(token=)[^&#\s]+")
_PATH_TOKEN = re.compile(r"(/pred/[^/?#\s]+/)[^/?#\s]+")


def redact(url: str | None) -> str:
    """A webhook URL fit to print: its token (in the path or the query) replaced by `***`.

    >>> redact("https://x.run.app/pred/abc/9f2e")
    'https://x.run.app/pred/abc/***'
    >>> redact("https://x.run.app/pred/abc?token=9f2e")
    'https://x.run.app/pred/abc?token=***'
    """
    return "(none)" if not url else _QUERY_TOKEN.sub(r"\1***", _PATH_TOKEN.sub(r"\1***", url))


def current_secret(config: AppConfig) -> str:
    """The secret new webhook tokens are made with; ConfigError when it is not set."""
    if config.server.secret is None:
        raise ConfigError(
            f"{config.source}: server.secret: required to make webhook tokens; set "
            "AUTOPILOT_SECRET in the environment or the .env file beside the config (`autopilot "
            "init` writes one)"
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
    or None when it is this server's webhook for the model; the token may be in the path
    (`/pred/{id}/{token}`) or, as registered by earlier versions, in the query."""
    if not url:
        return "no webhook registered"
    found = _model_and_token(url)
    if found is None or found[0] != model_id:
        return f"registered {redact(url)} is not this model's /pred/ URL"
    token = found[1]
    if not verify_token(token, model_id, secrets):
        return "its token was not made with server.secret"
    if not verify_token(token, model_id, secrets[:1]):
        return "its token uses a previous secret (rotation not finished)"
    if base_url and not url.startswith(base_url.rstrip("/") + "/pred/"):
        return f"registered {redact(url)} is not at {base_url}"
    return None


def _model_and_token(url: str) -> tuple[str, str] | None:
    """The model id and token of a `.../pred/{id}/{token}` or `.../pred/{id}?token=` URL."""
    parts = urlsplit(url)
    segments = [unquote(s) for s in parts.path.rstrip("/").split("/")]
    if "pred" not in segments:
        return None
    after = segments[len(segments) - segments[::-1].index("pred"):]
    if len(after) == 2:
        return after[0], after[1]
    if len(after) == 1:
        return after[0], (parse_qs(parts.query).get("token") or [""])[0]
    return None
