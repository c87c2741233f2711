"""Errors of the Numerai client, and the translation of httpx's exceptions into them.

    NumeraiError                 (numerai_autopilot.errors.AutopilotError)
    ├── AuthenticationError      keys missing, or Numerai refused them
    ├── GraphQLError             Numerai refused the request ({"errors": [...]}): .operation,
    │   │                        .message; not retried
    │   └── NotFoundError        unknown model, file or round
    ├── UploadError              the presigned PUT failed: never followed by create_submission
    └── TransientError           5xx, 429, timeout, connection reset, malformed body, or a
        │                        GraphQL error on Numerai's side (internal error, timeout,
        │                        rate limit; answered with HTTP 200): retried
        └── DeadlineExceeded     retries ran out of time: .last_error is the last cause

Every message here is built by this package and passed through ``Redactor`` first, so no
message carries the secret key, the Authorization header or a presigned URL's signature.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

import httpx

from numerai_autopilot.errors import AutopilotError


class NumeraiError(AutopilotError):
    """Root of the client's errors; raised as is for non-retryable protocol failures."""


class AuthenticationError(NumeraiError):
    """API keys are missing, or Numerai refused them (wrong, revoked, lacking a scope)."""


# How a person gives the service the account's keys; the end of every refusal's message.
KEYS_HINT = ("set NUMERAI_PUBLIC_ID and NUMERAI_SECRET_KEY (or numerai.public_id and "
             "numerai.secret_key) to an API key of the account, made at numer.ai under "
             "Account > API keys")


class GraphQLError(NumeraiError):
    """Numerai answered a GraphQL operation with an error."""

    def __init__(self, operation: str, message: str) -> None:
        super().__init__(f"Numerai refused {operation}: {message}")
        self.operation = operation
        self.message = message

    def __reduce__(self) -> tuple[type[GraphQLError], tuple[str, str]]:
        # Keeps the two-argument constructor picklable (errors cross Dask process borders).
        return (type(self), (self.operation, self.message))


class NotFoundError(GraphQLError):
    """The model, file or round named in the request does not exist."""


class UploadError(NumeraiError):
    """The presigned PUT of a submission failed; the submission was not created.

    ``retryable`` is true when the PUT failed for transient reasons (5xx, dropped
    connections) until the deadline: a fresh upload later may succeed.
    """

    def __init__(self, message: str, status_code: int | None = None, retryable: bool = False):
        super().__init__(message)
        self.status_code = status_code
        self.retryable = retryable

    def __reduce__(self) -> tuple[type[UploadError], tuple[str, int | None, bool]]:
        return (type(self), (str(self), self.status_code, self.retryable))


class TransientError(NumeraiError):
    """A failure that may go away on its own: retried with backoff until the deadline.

    ``retry_after`` is the server's Retry-After hint in seconds, when it sent one.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[type[TransientError], tuple[str, float | None]]:
        return (type(self), (str(self), self.retry_after))


class DeadlineExceeded(TransientError):
    """Retries ran out of time; ``last_error`` is the transient failure seen last."""

    def __init__(self, message: str, last_error: TransientError | None = None) -> None:
        super().__init__(message)
        self.last_error = last_error

    def __reduce__(self) -> tuple[type[TransientError], tuple[str, float | None]]:
        # last_error is also the __cause__; pickling drops causes anyway.
        return (DeadlineExceeded, (str(self), None))


class Redactor:
    """Removes the API keys from text that may end up in an error message.

    >>> Redactor("pub", "s3cret")("Token pub$s3cret")
    'Token pub$***'
    """

    def __init__(self, *secrets: str | None) -> None:
        # Longest first, so a secret that contains another is removed whole.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def safe_url(url: str | httpx.URL) -> str:
    """The URL without its query string: a presigned URL's query is a credential."""
    parts = urlsplit(str(url))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


# Numerai's wording is not documented; these cover the messages its API and the sandbox
# send for missing, wrong or under-scoped keys.
_AUTH_PATTERNS = re.compile(
    r"authenticat|unauthori[sz]ed|not authori[sz]ed|api key|api token|invalid token|"
    r"token is invalid|session is invalid|insufficient (permission|scope)|permission denied|"
    r"login required|must be logged in",
    re.IGNORECASE,
)
_NOT_FOUND_PATTERNS = re.compile(
    r"not found|does not exist|doesn't exist|no such|unknown (model|file|round|dataset)|"
    r"could not find|couldn't find|no model|no round|no dataset|invalid (model|file ?name)",
    re.IGNORECASE,
)
# A document or variables the schema refuses: our mistake, never transient. The wording is
# graphql-js's (and graphql-core's), which other GraphQL servers share.
_INVALID_PATTERNS = re.compile(
    r"syntax error|cannot query field|unknown argument|unknown type|used in position "
    r"expecting|of (non-null|required) type|must not be null|expected (value of )?type|"
    r"argument .{1,80} is required|was not provided",
    re.IGNORECASE,
)
# Failures on Numerai's side that it answers with HTTP 200: "Internal server error"
# (numerai/numerapi#15, on submission_upload_auth); numerai-cli matches "Internal Server
# Error" in error text (numerai/cli/node/test.py). Timeouts and rate limits: no reference
# shows Numerai's wording, so the usual words.
_TRANSIENT_PATTERNS = re.compile(
    r"internal (server )?error|timed? ?out\b|timeout|rate.?limit|too many requests|throttl",
    re.IGNORECASE,
)
# extensions.code: no reference shows Numerai sending one; these are the GraphQL servers'
# common codes (Apollo Server's list: apollographql.com/docs/apollo-server/v3/data/errors).
_AUTH_CODES = frozenset({"UNAUTHENTICATED", "FORBIDDEN"})
_INVALID_CODES = frozenset(
    {"GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED", "BAD_USER_INPUT", "BAD_REQUEST"}
)
_NOT_FOUND_CODES = frozenset({"NOT_FOUND"})
_TRANSIENT_CODES = frozenset(
    {"INTERNAL_SERVER_ERROR", "INTERNAL_ERROR", "TIMEOUT", "GATEWAY_TIMEOUT",
     "RATE_LIMITED", "TOO_MANY_REQUESTS", "SERVICE_UNAVAILABLE"}
)


def _kind(error: object) -> str:
    """What one entry of ``errors`` says: auth, invalid, not_found, transient or other;
    by its ``extensions.code`` first, then by its message."""
    code = ""
    if isinstance(error, dict):
        extensions = error.get("extensions")
        if isinstance(extensions, dict):
            code = str(extensions.get("code") or "").upper()
    for codes, kind in ((_AUTH_CODES, "auth"), (_INVALID_CODES, "invalid"),
                        (_NOT_FOUND_CODES, "not_found"), (_TRANSIENT_CODES, "transient")):
        if code in codes:
            return kind
    message = _message(error)
    for pattern, kind in ((_AUTH_PATTERNS, "auth"), (_INVALID_PATTERNS, "invalid"),
                          (_NOT_FOUND_PATTERNS, "not_found"), (_TRANSIENT_PATTERNS, "transient")):
        if pattern.search(message):
            return kind
    return "other"


def _message(error: object) -> str:
    if not isinstance(error, dict):
        return str(error)
    text = str(error.get("message", error))
    extensions = error.get("extensions")
    if isinstance(extensions, dict) and extensions.get("code"):
        text += f" [{extensions['code']}]"
    return text


def classify_graphql_errors(
    operation: str, errors: object, redact: Redactor | None = None
) -> NumeraiError:
    """The error for Numerai's ``{"errors": [...]}`` answer to ``operation``.

    A refusal of our request (keys, the document, an unknown model) wins over a failure on
    Numerai's side: the answer is a TransientError only when every entry of ``errors`` is an
    internal error, a timeout or a rate limit (by ``extensions.code``, else by message).

    >>> type(classify_graphql_errors("rounds", [{"message": "Internal server error"}]))
    <class 'numerai_autopilot.numerai.errors.TransientError'>
    """
    entries = errors if isinstance(errors, list) and errors else [errors]
    kinds = {_kind(entry) for entry in entries}
    message = "; ".join(_message(entry) for entry in entries)[:500]
    if redact is not None:
        message = redact(message)
    if "auth" in kinds:
        return AuthenticationError(
            f"Numerai refused the API keys on {operation}: {message}; {KEYS_HINT}")
    if kinds == {"transient"}:
        return TransientError(f"Numerai {operation}: {message} (an error on Numerai's side, "
                              "answered as a GraphQL error; retried)")
    if "not_found" in kinds and "invalid" not in kinds:
        return NotFoundError(operation, message)
    return GraphQLError(operation, message)


def translate_transport_error(exc: httpx.HTTPError | httpx.InvalidURL, what: str) -> NumeraiError:
    """Maps an httpx exception raised while doing ``what`` to this package's errors.

    Raise the result ``from exc``. httpx's messages name a URL at most, never headers;
    the query string is dropped because presigned URLs carry their signature there.
    """
    detail = strip_queries(str(exc)) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return TransientError(f"{what}: timed out ({type(exc).__name__}: {detail})")
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError | httpx.InvalidURL):
        # Our request or URL is wrong: retrying cannot help.
        return NumeraiError(f"{what}: invalid request ({detail}); check the API URL")
    if isinstance(exc, httpx.TransportError | httpx.DecodingError):
        # Connection refused/reset, peer closed mid-body, proxy failures, bad gzip.
        return TransientError(f"{what}: connection failed ({type(exc).__name__}: {detail})")
    if isinstance(exc, httpx.TooManyRedirects):
        return NumeraiError(
            f"{what}: too many redirects (more than the HTTP client's max_redirects); the URL "
            "redirects in a loop"
        )
    return NumeraiError(f"{what}: {type(exc).__name__}: {detail}")


def transient_status(status_code: int) -> bool:
    """HTTP statuses worth retrying: server errors, request timeout, rate limiting."""
    return status_code >= 500 or status_code in (408, 425, 429)


def retry_after_seconds(response: httpx.Response) -> float | None:
    """The Retry-After header in seconds (only the delta form; dates are ignored)."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


_URL_QUERY = re.compile(r"(https?://[^\s'\"?]+)\?[^\s'\"]*")


def strip_queries(text: str) -> str:
    """`text` with the query string of every URL in it removed (presigned signatures)."""
    return _URL_QUERY.sub(r"\1", text)
