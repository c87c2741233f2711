"""One GraphQL call to Numerai: auth header, timeout, and the answer's translation.

Numerai answers errors as HTTP 200 with ``{"errors": [...]}``, its own failures included
("Internal server error": numerai/numerapi#15); 5xx happen under load. ``errors.py``
sorts them into refusals and transient failures. This is the only place that sees the
Authorization header.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from numerai_autopilot.numerai.errors import (
    KEYS_HINT,
    AuthenticationError,
    NumeraiError,
    Redactor,
    TransientError,
    classify_graphql_errors,
    retry_after_seconds,
    safe_url,
    transient_status,
    translate_transport_error,
)
from numerai_autopilot.numerai.retry import Clock, RetryPolicy, retry_call


class GraphQL:
    """Sends GraphQL documents to Numerai's API URL and returns ``data[operation]``."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        api_url: str,
        public_id: str | None,
        secret_key: str | None,
        *,
        retry: RetryPolicy,
        timeout: float,
        clock: Clock,
    ) -> None:
        self._http = http
        self._api_url = api_url
        self._keys = (public_id, secret_key) if public_id and secret_key else None
        self.retry = retry
        self.timeout = timeout
        self.clock = clock
        self.redact = Redactor(f"{public_id}${secret_key}" if self._keys else None, secret_key)

    @property
    def has_keys(self) -> bool:
        """Whether both API keys were given (the account's operations need them)."""
        return self._keys is not None

    async def call(
        self,
        operation: str,
        query: str,
        variables: dict[str, Any],
        *,
        auth: bool = False,
        deadline: float | None,
    ) -> Any:
        """``data[operation]``, retried on transient failures within the deadline."""

        async def attempt(remaining: float) -> Any:
            return await self.once(operation, query, variables, auth=auth, remaining=remaining)

        return await retry_call(
            attempt,
            what=f"Numerai {operation}",
            policy=self.retry,
            deadline=deadline,
            clock=self.clock,
        )

    async def once(
        self,
        operation: str,
        query: str,
        variables: dict[str, Any],
        *,
        auth: bool,
        remaining: float,
    ) -> Any:
        """One try, limited to ``min(timeout, remaining)`` seconds in total.

        :raises TransientError: 5xx, 429, a dropped connection, a timeout, an answer that is
            not JSON, or a GraphQL error on Numerai's side (internal error, timeout, rate
            limit), which may have been applied if the operation is a mutation.
        :raises NumeraiError: a refusal (AuthenticationError, GraphQLError, NotFoundError),
            or a redirect (the API URL is wrong).
        """
        headers = {"Accept": "application/json"}
        if auth:
            if self._keys is None:
                raise AuthenticationError(f"Numerai {operation} needs API keys: {KEYS_HINT}")
            headers["Authorization"] = f"Token {self._keys[0]}${self._keys[1]}"
        wait = min(self.timeout, remaining)
        body = {"query": query, "variables": variables}
        try:
            # httpx's timeout bounds each network operation; this bounds the whole exchange,
            # so a server dripping bytes cannot hold the call past the deadline.
            async with asyncio.timeout(wait):
                # A redirect is not followed: it means the configured URL is not the API's.
                resp = await self._http.post(
                    self._api_url, json=body, headers=headers, timeout=wait,
                    follow_redirects=False,
                )
        except TimeoutError as exc:
            raise TransientError(f"Numerai {operation}: no answer within {wait:.1f}s") from exc
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise translate_transport_error(exc, f"Numerai {operation}") from exc
        return self._parse(operation, resp)

    def _parse(self, operation: str, resp: httpx.Response) -> Any:
        status = resp.status_code
        what = f"Numerai {operation}"
        if transient_status(status):
            raise TransientError(f"{what}: HTTP {status}", retry_after=retry_after_seconds(resp))
        if resp.has_redirect_location:
            location = safe_url(resp.headers["location"])
            raise NumeraiError(
                f"{what}: HTTP {status}, a redirect to {location}; set numerai.api_url to the "
                "GraphQL endpoint itself (https://api-tournament.numer.ai)"
            )
        if status in (401, 403):
            raise AuthenticationError(
                f"Numerai refused the API keys on {operation} (HTTP {status}); {KEYS_HINT}"
            )
        try:
            payload = resp.json()
        except ValueError as exc:
            if status >= 400:
                raise NumeraiError(f"{what}: HTTP {status}{_api_hint(status)}") from None
            # A proxy's HTML page or a truncated body: worth another try.
            raise TransientError(
                f"{what}: the answer is not JSON ({resp.headers.get('content-type', '?')}, "
                f"{len(resp.content)} bytes)"
            ) from exc
        if not isinstance(payload, dict):
            raise TransientError(f"{what}: the answer is not a JSON object")
        errors = payload.get("errors")
        if errors:
            raise classify_graphql_errors(operation, errors, self.redact)
        if status >= 400:
            raise NumeraiError(f"{what}: HTTP {status}{_api_hint(status)}")
        data = payload.get("data")
        if not isinstance(data, dict) or operation not in data:
            raise TransientError(f"{what}: the answer has no data.{operation}")
        return data[operation]


def _api_hint(status: int) -> str:
    return "; check the API URL" if status in (404, 405) else ""
