"""The client sends only what the references send, and presigned URLs exactly as given.

Against the sandbox over real HTTP: its presigned URLs are signed over their query's bytes,
and ``numerai_fields_only`` answers with the schema of what numerapi and numerai-cli show.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import graphql
import httpx
import pytest
from numerai_helpers import FAST_RETRY, classic_csv, signals_csv

from numerai_autopilot.numerai import (
    NumeraiClient,
    NumeraiError,
    Tournament,
    TransientError,
    UploadError,
    queries,
)
from numerai_autopilot.numerai.download import download_file
from numerai_autopilot.sandbox.schema import REFERENCE_SCHEMA
from numerai_autopilot.sandbox.testing import RunningSandbox

LIVE = "v5.3/live.parquet"


def documents() -> dict[str, str]:
    """Every GraphQL document of ``queries.py``, by name."""
    return {name: text for name, text in vars(queries).items()
            if name.isupper() and isinstance(text, str)}


def test_every_document_but_the_webhook_read_uses_only_what_references_show() -> None:
    refused = {name: [e.message for e in graphql.validate(REFERENCE_SCHEMA, graphql.parse(text))]
               for name, text in documents().items()}
    assert {name for name, errors in refused.items() if errors} == {"SUBMISSION_WEBHOOKS"}
    (error,) = refused["SUBMISSION_WEBHOOKS"]
    assert error.startswith("Cannot query field 'submissionWebhook' on type 'Model'.")


def test_the_create_mutations_send_no_source() -> None:
    for text in (queries.CREATE_SUBMISSION, queries.CREATE_SIGNALS_SUBMISSION):
        assert "source" not in text


async def test_submissions_are_created_without_a_source(
    client: NumeraiClient, sandbox: RunningSandbox
) -> None:
    round_number = sandbox.settings.start_round
    await client.upload_predictions(sandbox.models["alpha"], classic_csv(sandbox, round_number),
                                    "a.csv", Tournament.CLASSIC, "t-classic")
    await client.upload_predictions(
        sandbox.models["sig"], signals_csv(sandbox, Tournament.SIGNALS, "numerai_ticker"),
        "s.csv", Tournament.SIGNALS, "t-signals")
    assert [s["source"] for s in sandbox.submissions()] == [None, None]


async def test_presigned_urls_are_sent_byte_for_byte(
    client: NumeraiClient, sandbox: RunningSandbox, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    target = await client.upload_auth(sandbox.models["alpha"], "a.csv", Tournament.CLASSIC)
    query = urlsplit(target.url).query
    # What a client that decodes and re-encodes a query would change.
    assert all(part in query for part in ("%2F", "%2B", "%3D", "+", "=="))
    await client.put_file(target.url, classic_csv(sandbox, sandbox.settings.start_round))
    (upload,) = sandbox.uploads()
    assert (upload["status_code"], upload["query"]) == (200, query)

    url = await client.dataset_url(LIVE)

    async def fixed_url(deadline: float | None) -> str:
        return url

    await download_file(http, fixed_url, tmp_path / "live.parquet", name=LIVE,
                        policy=FAST_RETRY, deadline=None, timeout=10)
    (download,) = sandbox.downloads()
    assert (download["completed"], download["query"]) == (True, urlsplit(url).query)


async def test_a_redirected_put_fails_naming_the_status(
    client: NumeraiClient, sandbox: RunningSandbox
) -> None:
    target = await client.upload_auth(sandbox.models["alpha"], "a.csv", Tournament.CLASSIC)
    sandbox.set_faults(operations={"put": {"redirects": 1}})
    data = classic_csv(sandbox, sandbox.settings.start_round)
    with pytest.raises(UploadError) as info:
        await client.put_file(target.url, data)
    assert info.value.status_code == 307 and not info.value.retryable
    message = str(info.value)
    assert "HTTP 307" in message and "redirect" in message and "not created" in message
    assert "signature" not in message  # the presigned query stays out of messages
    with pytest.raises(UploadError, match="HTTP 307"):
        await client.upload_predictions(
            sandbox.models["alpha"], data, "a.csv", Tournament.CLASSIC, "t", target=target)
    assert sandbox.uploads() == []  # never followed
    assert sandbox.submissions() == []


async def test_a_redirected_api_fails_naming_the_status(
    client: NumeraiClient, sandbox: RunningSandbox
) -> None:
    sandbox.set_faults(operations={"rounds": {"redirects": 1, "redirect_status": 301}})
    with pytest.raises(NumeraiError, match="HTTP 301, a redirect to") as info:
        await client.current_round()
    assert not isinstance(info.value, TransientError)


async def test_without_the_sandboxs_own_fields_the_client_degrades(
    client: NumeraiClient, sandbox: RunningSandbox
) -> None:
    """Against a Numerai that has only what the references show: the webhook read says
    "cannot tell"; a round's every operation works."""
    sandbox.set_faults(numerai_fields_only=True)
    assert await client.submission_webhooks() is None
    model_id = sandbox.models["alpha"]
    assert await client.set_submission_webhook(model_id, "http://127.0.0.1:9/pred/alpha")
    assert model_id in {m.id for m in await client.models()}
    round_number = (await client.current_round()).number
    assert LIVE in await client.list_datasets()
    submission_id = await client.upload_predictions(
        model_id, classic_csv(sandbox, round_number), "a.csv", Tournament.CLASSIC, "t")
    assert [s.id for s in await client.submissions(model_id)] == [submission_id]
