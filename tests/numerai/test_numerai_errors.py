"""httpx exceptions and Numerai's answers -> the client's error tree.

Numerai is third-party, so an httpx.MockTransport stands in for it here: this checks the
translation at the transport boundary only. The behaviour against a live server is in
test_client.py, against the sandbox.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest

from numerai_autopilot.errors import AutopilotError
from numerai_autopilot.numerai import (
    AuthenticationError,
    DeadlineExceeded,
    GraphQLError,
    NotFoundError,
    NumeraiClient,
    NumeraiError,
    RetryPolicy,
    TransientError,
    UploadError,
)
from numerai_autopilot.numerai.errors import classify_graphql_errors, translate_transport_error

PUBLIC = "PUBLICIDPUBLICIDPUBLICID"
SECRET = "s3cr3t-KEY-that-must-never-leak-0123456789"
API = "https://api.example.test/"
# A tiny window: transient errors give up after a few quick tries.
FAST = RetryPolicy(initial=0.001, maximum=0.002, deadline_s=0.05)

Handler = Callable[[httpx.Request], httpx.Response]
_OPEN: list[httpx.AsyncClient] = []


@pytest.fixture(autouse=True)
async def _close_http_clients() -> AsyncIterator[None]:
    yield
    while _OPEN:
        await _OPEN.pop().aclose()


def client_for(handler: Handler, **kwargs: object) -> tuple[NumeraiClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(record))
    _OPEN.append(http)
    options: dict[str, object] = {"public_id": PUBLIC, "secret_key": SECRET, "retry": FAST}
    options.update(kwargs)
    return NumeraiClient(http, API, **options), seen  # type: ignore[arg-type]


def chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def assert_no_secret(exc: BaseException) -> None:
    for link in chain(exc):
        for text in (str(link), repr(link), *map(str, link.args)):
            assert SECRET not in text, f"{type(link).__name__} leaks the secret: {text}"


def raising(exc: Exception) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


TRANSIENT_EXCEPTIONS = [
    httpx.ConnectError("[Errno 111] Connection refused"),
    httpx.ConnectTimeout("timed out"),
    httpx.ReadTimeout("timed out"),
    httpx.WriteTimeout("timed out"),
    httpx.PoolTimeout("timed out"),
    httpx.ReadError("[Errno 104] Connection reset by peer"),
    httpx.WriteError("broken pipe"),
    httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
    httpx.ProxyError("proxy said no"),
    httpx.DecodingError("bad gzip"),
]
PERMANENT_EXCEPTIONS = [
    httpx.UnsupportedProtocol("Request URL has an unsupported protocol 'ftp://'."),
    httpx.LocalProtocolError("illegal header"),
    httpx.TooManyRedirects("Exceeded maximum allowed redirects."),
]


@pytest.mark.parametrize("exc", TRANSIENT_EXCEPTIONS, ids=lambda e: type(e).__name__)
def test_transport_failures_map_to_transient(exc: httpx.HTTPError) -> None:
    error = translate_transport_error(exc, "Numerai rounds")
    assert isinstance(error, TransientError)
    assert "Numerai rounds" in str(error)


@pytest.mark.parametrize("exc", PERMANENT_EXCEPTIONS, ids=lambda e: type(e).__name__)
def test_request_mistakes_map_to_permanent(exc: httpx.HTTPError) -> None:
    error = translate_transport_error(exc, "Numerai rounds")
    assert isinstance(error, NumeraiError)
    assert not isinstance(error, TransientError)


def test_invalid_url_maps_to_permanent() -> None:
    error = translate_transport_error(httpx.InvalidURL("Invalid port"), "Numerai rounds")
    assert type(error) is NumeraiError


def test_presigned_signatures_are_dropped_from_messages() -> None:
    exc = httpx.ConnectError("cannot reach https://bucket.test/f.parquet?X-Amz-Signature=abc")
    assert "X-Amz-Signature" not in str(translate_transport_error(exc, "download"))


def test_every_error_is_an_autopilot_error() -> None:
    for cls in (
        AuthenticationError,
        GraphQLError,
        NotFoundError,
        UploadError,
        TransientError,
        DeadlineExceeded,
    ):
        assert issubclass(cls, NumeraiError)
    assert issubclass(NumeraiError, AutopilotError)
    assert issubclass(NotFoundError, GraphQLError)
    assert issubclass(DeadlineExceeded, TransientError)


@pytest.mark.parametrize("exc", TRANSIENT_EXCEPTIONS, ids=lambda e: type(e).__name__)
async def test_client_retries_transport_failures_then_gives_up(exc: httpx.HTTPError) -> None:
    client, seen = client_for(raising(exc))
    with pytest.raises(DeadlineExceeded) as info:
        await client.models()
    assert len(seen) >= 2  # retried
    assert isinstance(info.value.last_error, TransientError)
    assert info.value.last_error.__cause__ is exc
    assert_no_secret(info.value)


@pytest.mark.parametrize("exc", PERMANENT_EXCEPTIONS, ids=lambda e: type(e).__name__)
async def test_client_does_not_retry_request_mistakes(exc: httpx.HTTPError) -> None:
    client, seen = client_for(raising(exc))
    with pytest.raises(NumeraiError) as info:
        await client.models()
    assert not isinstance(info.value, TransientError)
    assert info.value.__cause__ is exc
    assert len(seen) == 1


def answer(status: int, body: object = None, text: str | None = None, **headers: str) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        if text is not None:
            return httpx.Response(status, text=text, headers=headers)
        return httpx.Response(status, json=body, headers=headers)

    return handler


def errors(message: str, code: str | None = None) -> dict[str, object]:
    error: dict[str, object] = {"message": message, "path": ["account"]}
    if code is not None:
        error["extensions"] = {"code": code}
    return {"errors": [error], "data": None}


@pytest.mark.parametrize(
    ("handler", "expected", "retried"),
    [
        (answer(500, text="oops"), DeadlineExceeded, True),
        (answer(502, text="bad gateway"), DeadlineExceeded, True),
        (answer(503, text="", **{"retry-after": "0"}), DeadlineExceeded, True),
        (answer(429, {"detail": "slow down"}), DeadlineExceeded, True),
        (answer(200, text="<html>proxy</html>"), DeadlineExceeded, True),
        (answer(200, [1, 2]), DeadlineExceeded, True),
        (answer(200, {"data": {}}), DeadlineExceeded, True),
        (answer(401, text="no"), AuthenticationError, False),
        (answer(403, {"detail": "forbidden"}), AuthenticationError, False),
        (answer(404, text="not here"), NumeraiError, False),
        (answer(200, errors("Your session is invalid or has expired")), AuthenticationError, False),
        (answer(200, errors("You must be authenticated to do this")), AuthenticationError, False),
        (answer(200, errors("Model not found")), NotFoundError, False),
        (answer(400, errors("Unknown argument 'x'")), GraphQLError, False),
    ],
)
async def test_answers_map_to_errors(
    handler: Handler, expected: type[Exception], retried: bool
) -> None:
    client, seen = client_for(handler)
    with pytest.raises(expected) as info:
        await client.models()
    assert type(info.value) is expected
    assert (len(seen) > 1) is retried
    assert_no_secret(info.value)


def entry(message: str, code: str | None = None) -> dict[str, object]:
    return errors(message, code)["errors"][0]  # type: ignore[index,no-any-return]


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        # numerai/numerapi#15: HTTP 200 and this message, on submission_upload_auth.
        ([entry("Internal server error")], TransientError),
        # numerai-cli (node/test.py) matches this spelling.
        ([entry("500 Internal Server Error")], TransientError),
        ([entry("Something broke", "INTERNAL_SERVER_ERROR")], TransientError),
        ([entry("Request timed out")], TransientError),
        ([entry("upstream timeout")], TransientError),
        ([entry("Rate limit exceeded, slow down")], TransientError),
        ([entry("Too Many Requests")], TransientError),
        ([entry("slow down", "RATE_LIMITED")], TransientError),
        ([entry("Internal server error"), entry("Internal server error")], TransientError),
        # A refusal of the request wins: retrying it cannot help.
        ([entry("Internal server error"), entry("Model not found")], NotFoundError),
        ([entry("Internal server error", "UNAUTHENTICATED")], AuthenticationError),
        ([entry("timeout", "GRAPHQL_VALIDATION_FAILED")], GraphQLError),
        ([entry("Unknown argument 'timeout' on field 'Query.rounds'.")], GraphQLError),
        ([entry("Variable '$modelId' of type 'String' used in position expecting type "
                "'String!'.")], GraphQLError),
        ([entry("Internal server error"), entry("Invalid submission: 3 rows")], GraphQLError),
        ([entry("Invalid submission: values outside [0, 1]")], GraphQLError),
        ([entry("no such model", "NOT_FOUND")], NotFoundError),
        ("a bare string", GraphQLError),
    ],
)
def test_graphql_errors_are_sorted_into_refusals_and_failures_on_numerais_side(
    entries: object, expected: type[NumeraiError]
) -> None:
    error = classify_graphql_errors("submission_upload_auth", entries)
    assert type(error) is expected
    assert "submission_upload_auth" in str(error)


async def test_http_200_internal_errors_are_retried_until_the_answer_comes() -> None:
    answers = iter([errors("Internal server error"), errors("x", "INTERNAL_SERVER_ERROR")])

    def flaky(request: httpx.Request) -> httpx.Response:
        body = next(answers, {"data": {"account": {"models": []}}})
        return httpx.Response(200, json=body)

    client, seen = client_for(flaky, retry=RetryPolicy(initial=0.001, maximum=0.002))
    assert await client.models() == []
    assert len(seen) == 3


async def test_http_200_internal_errors_end_in_deadline_exceeded_naming_them() -> None:
    client, seen = client_for(answer(200, errors("Internal server error")))
    with pytest.raises(DeadlineExceeded) as info:
        await client.models()
    assert len(seen) > 1
    assert "Internal server error" in str(info.value)
    assert "Numerai account" in str(info.value.last_error)


async def test_a_redirect_of_the_api_is_not_followed() -> None:
    client, seen = client_for(
        answer(301, text="", location="https://api.example.test/v2?key=secret")
    )
    with pytest.raises(NumeraiError) as info:
        await client.models()
    assert not isinstance(info.value, TransientError)
    assert "HTTP 301" in str(info.value) and "https://api.example.test/v2" in str(info.value)
    assert "key=secret" not in str(info.value)
    assert len(seen) == 1


async def test_graphql_error_names_operation_and_message() -> None:
    client, _ = client_for(answer(200, errors("tournament 99 is not valid")))
    with pytest.raises(GraphQLError) as info:
        await client.list_datasets()
    assert info.value.operation == "listDatasets"
    assert info.value.message == "tournament 99 is not valid"


async def test_auth_header_is_numerais_token_format() -> None:
    client, seen = client_for(answer(200, {"data": {"account": {"models": []}}}))
    assert await client.models() == []
    assert seen[0].headers["authorization"] == f"Token {PUBLIC}${SECRET}"


async def test_public_queries_send_no_keys() -> None:
    client, seen = client_for(answer(200, {"data": {"listDatasets": ["v5.3/live.parquet"]}}))
    assert await client.list_datasets() == ["v5.3/live.parquet"]
    assert "authorization" not in seen[0].headers


async def test_missing_keys_fail_before_any_request() -> None:
    client, seen = client_for(answer(200, {}), public_id=None, secret_key=None)
    with pytest.raises(AuthenticationError, match="needs API keys"):
        await client.models()
    assert seen == []


async def test_secret_echoed_by_the_server_is_redacted() -> None:
    echo = errors(f"invalid token Token {PUBLIC}${SECRET}")
    client, _ = client_for(answer(200, echo))
    with pytest.raises(AuthenticationError) as info:
        await client.models()
    assert_no_secret(info.value)
    assert SECRET not in repr(client)


async def test_refused_put_body_is_redacted() -> None:
    client, _ = client_for(answer(403, text=f"<Error>AccessDenied {SECRET}</Error>"))
    with pytest.raises(UploadError) as info:
        await client.put_file("https://bucket.test/up?X-Amz-Signature=sig", b"id,prediction\n")
    assert_no_secret(info.value)
    assert "X-Amz-Signature" not in str(info.value)
    assert info.value.status_code == 403
    assert not info.value.retryable


async def test_put_failing_transiently_ends_in_retryable_upload_error() -> None:
    client, seen = client_for(raising(httpx.ReadError("[Errno 104] Connection reset by peer")))
    with pytest.raises(UploadError) as info:
        await client.put_file("https://bucket.test/up", b"x")
    assert info.value.retryable
    assert isinstance(info.value.__cause__, DeadlineExceeded)
    assert len(seen) >= 2
    assert_no_secret(info.value)


@pytest.mark.parametrize(
    "error",
    [
        NumeraiError("x"),
        AuthenticationError("refused"),
        GraphQLError("rounds", "bad"),
        NotFoundError("dataset", "no file"),
        UploadError("refused", status_code=403, retryable=False),
        TransientError("later", retry_after=2.0),
        DeadlineExceeded("gave up", TransientError("last")),
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_survive_pickling(error: NumeraiError) -> None:
    # Errors cross process borders (Dask workers, the ledger's error column).
    import pickle

    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    if isinstance(error, GraphQLError):
        assert (copy.operation, copy.message) == (error.operation, error.message)  # type: ignore[attr-defined]
