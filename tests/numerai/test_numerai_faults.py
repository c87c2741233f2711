"""Retries and deadlines under the sandbox's injected faults (5xx, drops, latency, Numerai's
HTTP-200 GraphQL errors); the failed-PUT rule; one submission per trigger."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest
from numerai_helpers import SHORT_RETRY, assert_no_secret, classic_csv

from numerai_autopilot.numerai import (
    DeadlineExceeded,
    NotFoundError,
    NumeraiClient,
    NumeraiError,
    RetryPolicy,
    Tournament,
    TransientError,
    UploadError,
)
from numerai_autopilot.sandbox.testing import RunningSandbox


def injected(sandbox: RunningSandbox, kind: str | None = None) -> list[dict[str, str]]:
    faults: list[dict[str, str]] = sandbox.sandbox.faults.view()["injected"]
    return [f for f in faults if kind is None or f["kind"] == kind]


def make_client(
    sandbox: RunningSandbox, http: httpx.AsyncClient, retry: RetryPolicy, timeout: float = 10
) -> NumeraiClient:
    return NumeraiClient(
        http, sandbox.url, sandbox.public_id, sandbox.secret_key, retry=retry, timeout=timeout
    )


async def test_5xx_answers_are_retried(client: NumeraiClient, sandbox: RunningSandbox) -> None:
    sandbox.set_faults(operations={"rounds": {"error_rate": 1.0, "error_status": 502, "times": 3}})
    assert (await client.current_round()).number == sandbox.settings.start_round
    assert len(injected(sandbox, "error")) == 3


async def test_dropped_connections_are_retried(
    client: NumeraiClient, sandbox: RunningSandbox
) -> None:
    sandbox.set_faults(operations={"account": {"drop_rate": 1.0, "times": 2}})
    assert {m.name for m in await client.models()} == set(sandbox.models)
    assert len(injected(sandbox, "drop")) == 2


async def test_random_faults_on_every_operation(
    client: NumeraiClient, sandbox: RunningSandbox
) -> None:
    sandbox.set_faults(seed=3, operations={"*": {"error_rate": 0.3, "drop_rate": 0.2}})
    model_id = sandbox.models["alpha"]
    round_number = (await client.current_round()).number
    assert await client.list_datasets()
    await client.upload_predictions(
        model_id, classic_csv(sandbox, round_number), "a.csv", Tournament.CLASSIC, "trig"
    )
    assert len(sandbox.submissions()) == 1
    assert injected(sandbox)  # the faults did happen


async def test_an_outage_is_waited_out(client: NumeraiClient, sandbox: RunningSandbox) -> None:
    sandbox.set_faults(down_for_s=0.5)
    assert await client.list_datasets()
    assert injected(sandbox, "down")


async def test_gives_up_at_the_policy_deadline(
    sandbox: RunningSandbox, http: httpx.AsyncClient
) -> None:
    sandbox.set_faults(operations={"*": {"error_rate": 1.0}})
    # A 2 s window: no try starts with less than 0.2 s left, ample for a 503 from 127.0.0.1
    # even on a loaded machine, so the last error is the 503 and not a cut-short try.
    policy = RetryPolicy(initial=0.01, maximum=0.05, jitter=0.5, deadline_s=2.0)
    client = make_client(sandbox, http, policy)
    with pytest.raises(DeadlineExceeded) as info:
        await client.current_round()
    assert isinstance(info.value.last_error, TransientError)
    assert "HTTP 503" in str(info.value.last_error)
    assert len(injected(sandbox)) >= 2  # it did retry


@pytest.mark.timeout(30)  # the policy alone would allow 600 s: the call deadline must win
async def test_gives_up_at_the_call_deadline(
    sandbox: RunningSandbox, http: httpx.AsyncClient
) -> None:
    sandbox.set_faults(operations={"*": {"drop_rate": 1.0}})
    client = make_client(sandbox, http, RetryPolicy(initial=0.01, maximum=0.05, deadline_s=600))
    with pytest.raises(DeadlineExceeded):
        await client.models(deadline=time.time() + 0.5)


async def test_a_passed_deadline_sends_nothing(
    client: NumeraiClient, sandbox: RunningSandbox
) -> None:
    sandbox.set_faults(operations={"*": {"error_rate": 1.0}})
    with pytest.raises(DeadlineExceeded, match="before the first try"):
        await client.current_round(deadline=time.time() - 1)
    assert injected(sandbox) == []


async def test_slow_answers_time_out(sandbox: RunningSandbox, http: httpx.AsyncClient) -> None:
    sandbox.set_faults(operations={"rounds": {"latency_ms": 2000}})
    client = make_client(sandbox, http, SHORT_RETRY, timeout=0.2)
    with pytest.raises(DeadlineExceeded) as info:
        await client.current_round()
    assert "no answer within" in str(info.value.last_error)


async def test_non_transient_errors_are_not_retried(sandbox: RunningSandbox) -> None:
    sent: list[httpx.Request] = []

    async def count(request: httpx.Request) -> None:
        sent.append(request)

    async with httpx.AsyncClient(event_hooks={"request": [count]}) as http:
        client = make_client(sandbox, http, SHORT_RETRY)
        with pytest.raises(NumeraiError) as info:
            await client.dataset_url("v5.3/nope.parquet")
    assert not isinstance(info.value, TransientError)
    assert len(sent) == 1


# -- errors Numerai answers with HTTP 200 ---------------------------------------------------


async def test_http_200_internal_errors_are_retried(
    client: NumeraiClient, sandbox: RunningSandbox
) -> None:
    sandbox.set_faults(operations={"rounds": {"graphql_error_rate": 1.0, "times": 2},
                                   "listDatasets": {"graphql_error_rate": 1.0, "times": 2,
                                                    "graphql_error_message": "Oops",
                                                    "graphql_error_code": "INTERNAL_SERVER_ERROR"}})
    assert (await client.current_round()).number == sandbox.settings.start_round
    assert await client.list_datasets()
    assert len(injected(sandbox, "graphql_error")) == 4


async def test_http_200_refusals_are_not_retried(sandbox: RunningSandbox) -> None:
    sent: list[httpx.Request] = []

    async def count(request: httpx.Request) -> None:
        sent.append(request)

    sandbox.set_faults(operations={"account": {"graphql_error_rate": 1.0,
                                               "graphql_error_message": "Model not found"}})
    async with httpx.AsyncClient(event_hooks={"request": [count]}) as http:
        with pytest.raises(NotFoundError, match="Model not found"):
            await make_client(sandbox, http, SHORT_RETRY).models()
    assert len(sent) == 1


async def test_random_http_200_errors_on_every_operation(
    client: NumeraiClient, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    sandbox.set_faults(seed=4, operations={"*": {"graphql_error_rate": 0.3}})
    model_id = sandbox.models["alpha"]
    round_number = (await client.current_round()).number
    await client.download("v5.3/features.json", tmp_path / "features.json")
    await client.upload_predictions(
        model_id, classic_csv(sandbox, round_number), "a.csv", Tournament.CLASSIC, "trig"
    )
    assert [s["trigger_id"] for s in sandbox.submissions()] == ["trig"]
    assert injected(sandbox, "graphql_error")
    assert {f["operation"] for f in injected(sandbox)} <= {
        "rounds", "dataset", "submission_upload_auth", "create_submission", "submissions"}


async def _uploaded(client: NumeraiClient, sandbox: RunningSandbox) -> tuple[str, str]:
    """(model id, filename) of a file PUT for alpha, ready for create_submission."""
    model_id = sandbox.models["alpha"]
    target = await client.upload_auth(model_id, "a.csv", Tournament.CLASSIC)
    await client.put_file(target.url, classic_csv(sandbox, sandbox.settings.start_round))
    return model_id, target.filename


async def test_a_create_applied_before_an_internal_error_is_not_sent_again(
    client: NumeraiClient, sandbox: RunningSandbox
) -> None:
    model_id, filename = await _uploaded(client, sandbox)
    # The create takes effect, then its answer is an internal error; the listing meant to
    # find it fails twice as well.
    sandbox.set_faults(operations={
        "create_submission": {"graphql_error_rate": 1.0, "graphql_error_after": True,
                              "times": 1},
        "submissions": {"graphql_error_rate": 1.0, "times": 2},
    })
    trigger_id = str(uuid.uuid4())
    submission_id = await client.create_submission(
        model_id, filename, Tournament.CLASSIC, trigger_id
    )
    recorded = sandbox.submissions()
    assert [(s["id"], s["trigger_id"]) for s in recorded] == [(submission_id, trigger_id)]
    assert [f["operation"] for f in injected(sandbox)] == [
        "create_submission", "submissions", "submissions"]


async def test_a_create_of_unknown_outcome_is_not_resent_blindly(
    sandbox: RunningSandbox, http: httpx.AsyncClient
) -> None:
    client = make_client(sandbox, http, SHORT_RETRY)
    model_id, filename = await _uploaded(client, sandbox)
    sandbox.set_faults(operations={
        "create_submission": {"graphql_error_rate": 1.0, "graphql_error_after": True},
        "submissions": {"graphql_error_rate": 1.0},
    })
    with pytest.raises(DeadlineExceeded) as info:
        await client.create_submission(model_id, filename, Tournament.CLASSIC, "trigger-x")
    assert "not sending it again" in str(info.value)
    assert len(sandbox.submissions()) == 1  # the one try that took effect; no second
    assert len(injected(sandbox)) >= 2


# -- uploads -----------------------------------------------------------------------------


async def test_failed_put_never_creates_a_submission(
    sandbox: RunningSandbox, http: httpx.AsyncClient
) -> None:
    sandbox.set_faults(put_failure_rate=1.0)
    client = make_client(sandbox, http, SHORT_RETRY)
    data = classic_csv(sandbox, sandbox.settings.start_round)
    with pytest.raises(UploadError) as info:
        await client.upload_predictions(
            sandbox.models["alpha"], data, "a.csv", Tournament.CLASSIC, "trigger-1"
        )
    assert info.value.retryable
    assert sandbox.submissions() == []
    uploads = sandbox.uploads()
    assert len(uploads) >= 2 and all(u["status_code"] == 500 for u in uploads)


async def test_flaky_puts_are_retried(client: NumeraiClient, sandbox: RunningSandbox) -> None:
    sandbox.set_faults(seed=1, put_failure_rate=0.5, operations={"put": {"drop_rate": 0.3}})
    data = classic_csv(sandbox, sandbox.settings.start_round)
    submission_id = await client.upload_predictions(
        sandbox.models["alpha"], data, "a.csv", Tournament.CLASSIC, "trigger-2"
    )
    assert [s["id"] for s in sandbox.submissions()] == [submission_id]


async def test_expired_upload_url_is_refused(
    client: NumeraiClient, sandbox: RunningSandbox
) -> None:
    target = await client.upload_auth(sandbox.models["alpha"], "a.csv", Tournament.CLASSIC)
    path = httpx.URL(target.url).path
    expired = sandbox.sandbox.signer.sign(sandbox.url, "PUT", path, ttl_s=-60)
    with pytest.raises(UploadError) as info:
        await client.put_file(expired, b"id,prediction\n")
    assert info.value.status_code == 403
    assert not info.value.retryable
    assert "signature" not in str(info.value)  # the query string stays out of messages


async def test_lost_create_submission_answer_is_not_submitted_twice(
    sandbox: RunningSandbox, http: httpx.AsyncClient
) -> None:
    # The sandbox takes 0.8 s to answer create_submission, the client gives up after 0.3 s
    # and waits 1.5 s: by then the first request has created the submission, and the
    # client must find it instead of sending create_submission again.
    sandbox.set_faults(operations={"create_submission": {"latency_ms": 800}})
    retry = RetryPolicy(initial=1.5, maximum=1.5, jitter=0.0, deadline_s=20)
    client = make_client(sandbox, http, retry, timeout=0.3)
    model_id = sandbox.models["alpha"]
    target = await client.upload_auth(model_id, "a.csv", Tournament.CLASSIC)
    await client.put_file(target.url, classic_csv(sandbox, sandbox.settings.start_round))
    trigger_id = str(uuid.uuid4())
    submission_id = await client.create_submission(
        model_id, target.filename, Tournament.CLASSIC, trigger_id
    )
    recorded = sandbox.submissions()
    assert [s["id"] for s in recorded] == [submission_id]
    assert recorded[0]["trigger_id"] == trigger_id


# -- no secret in any error --------------------------------------------------------------


async def test_no_error_mentions_the_secret(
    sandbox: RunningSandbox, http: httpx.AsyncClient
) -> None:
    secret = sandbox.secret_key
    good = make_client(sandbox, http, SHORT_RETRY, timeout=0.3)
    wrong = NumeraiClient(http, sandbox.url, sandbox.public_id, secret + "x", retry=SHORT_RETRY)
    model_id = sandbox.models["alpha"]
    errors: list[BaseException] = []

    async def provoke(make: object) -> None:
        try:
            await make  # type: ignore[misc]
        except NumeraiError as exc:
            errors.append(exc)
        else:
            raise AssertionError("expected an error")

    await provoke(wrong.models())  # AuthenticationError
    await provoke(good.upload_auth(str(uuid.uuid4()), "a.csv", 8))  # NotFoundError
    await provoke(good.upload_auth(model_id, "a.csv", 12))  # GraphQLError
    await provoke(good.create_submission(model_id, "nope.csv", 8, "t"))  # NotFoundError
    await provoke(good.put_file(sandbox.url + "/uploads/x/y/z.csv?expires=1&signature=0", b""))
    await provoke(good.download("v5.3/nope.parquet", sandbox.settings.data_dir / "x"))
    sandbox.set_faults(operations={"*": {"error_rate": 1.0}})
    await provoke(good.models())  # DeadlineExceeded after 5xx
    sandbox.set_faults(operations={"*": {"drop_rate": 1.0}})
    await provoke(good.submissions(model_id))  # DeadlineExceeded after dropped connections
    sandbox.set_faults(operations={"account": {"latency_ms": 1000}})
    await provoke(good.models())  # DeadlineExceeded after timeouts
    sandbox.set_faults(put_failure_rate=1.0)
    target = await good.upload_auth(model_id, "a.csv", 8)
    await provoke(good.put_file(target.url, b"id,prediction\n"))  # retryable UploadError
    assert {type(e).__name__ for e in errors} >= {
        "AuthenticationError",
        "NotFoundError",
        "GraphQLError",
        "UploadError",
        "DeadlineExceeded",
    }
    for error in errors:
        assert_no_secret(error, secret)
