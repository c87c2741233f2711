"""Every client operation against the sandbox over real HTTP, and every bad input."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime

import httpx
import pytest
from numerai_helpers import FAST_RETRY, assert_no_secret, classic_csv, signals_csv

from numerai_autopilot.config import NumeraiSettings
from numerai_autopilot.numerai import (
    AuthenticationError,
    GraphQLError,
    NotFoundError,
    NumeraiClient,
    NumeraiError,
    RoundInfo,
    Tournament,
    UploadError,
)
from numerai_autopilot.sandbox.testing import RunningSandbox

DATA = "v5.3"


# -- rounds and data ---------------------------------------------------------------------


@pytest.mark.parametrize("tournament", list(Tournament))
async def test_current_round(
    anonymous: NumeraiClient, sandbox: RunningSandbox, tournament: Tournament
) -> None:
    info = await anonymous.current_round(tournament)
    assert isinstance(info, RoundInfo)
    assert info.number == sandbox.settings.start_round
    assert info.tournament is tournament
    assert isinstance(info.open_time, datetime) and info.open_time.tzinfo is not None
    assert info.close_time is not None and info.close_time > info.open_time


async def test_current_round_follows_the_sandbox(
    anonymous: NumeraiClient, sandbox: RunningSandbox
) -> None:
    sandbox.open_round(8)
    assert (await anonymous.current_round()).number == sandbox.settings.start_round + 1


async def test_list_datasets(anonymous: NumeraiClient) -> None:
    names = await anonymous.list_datasets()
    assert f"{DATA}/live.parquet" in names
    assert f"{DATA}/features.json" in names


async def test_list_datasets_of_signals(anonymous: NumeraiClient) -> None:
    names = await anonymous.list_datasets(Tournament.SIGNALS)
    assert any(name.startswith("signals/") for name in names)


async def test_dataset_url_is_presigned(anonymous: NumeraiClient, sandbox: RunningSandbox) -> None:
    url = await anonymous.dataset_url(f"{DATA}/live.parquet")
    assert url.startswith(sandbox.url)
    async with httpx.AsyncClient() as http:
        assert (await http.get(url)).status_code == 200


async def test_unknown_dataset_is_not_found(anonymous: NumeraiClient) -> None:
    with pytest.raises(NotFoundError) as info:
        await anonymous.dataset_url(f"{DATA}/no_such_file.parquet")
    assert info.value.operation == "dataset"
    assert "no_such_file" in info.value.message


async def test_unknown_round_is_not_found(anonymous: NumeraiClient) -> None:
    with pytest.raises(NotFoundError):
        await anonymous.dataset_url(f"{DATA}/live.parquet", round=5)


async def test_unknown_tournament_is_refused_locally(anonymous: NumeraiClient) -> None:
    with pytest.raises(ValueError, match="unknown tournament 99"):
        await anonymous.current_round(99)


# -- the account -------------------------------------------------------------------------


async def test_models(client: NumeraiClient, sandbox: RunningSandbox) -> None:
    models = await client.models()
    assert {m.name: m.id for m in models} == sandbox.models
    by_name = {m.name: m for m in models}
    assert by_name["alpha"].tournament == 8
    assert by_name["sig"].tournament == 11
    assert by_name["cry"].tournament == 12


async def test_models_of_one_tournament(client: NumeraiClient) -> None:
    assert [m.name for m in await client.models(tournament=Tournament.SIGNALS)] == ["sig"]


async def test_set_and_clear_submission_webhook(
    client: NumeraiClient, sandbox: RunningSandbox
) -> None:
    model_id = sandbox.models["alpha"]
    assert await client.set_submission_webhook(model_id, "http://127.0.0.1:9/pred/alpha")
    assert sandbox.sandbox.models[model_id].webhook == "http://127.0.0.1:9/pred/alpha"
    assert await client.set_submission_webhook(model_id, None)
    assert sandbox.sandbox.models[model_id].webhook is None


async def test_submission_webhooks(client: NumeraiClient, sandbox: RunningSandbox) -> None:
    model_id = sandbox.models["alpha"]
    await client.set_submission_webhook(model_id, "http://127.0.0.1:9/pred/alpha")
    webhooks = await client.submission_webhooks()
    assert webhooks is not None and set(webhooks) == set(sandbox.models.values())
    assert webhooks[model_id] == "http://127.0.0.1:9/pred/alpha"
    assert webhooks[sandbox.models["beta"]] is None


async def test_a_client_from_the_numerai_table(
    sandbox: RunningSandbox, http: httpx.AsyncClient
) -> None:
    settings = NumeraiSettings.model_validate({
        "api_url": sandbox.url, "public_id": sandbox.public_id,
        "secret_key": sandbox.secret_key, "timeout": "7s",
    })
    client = NumeraiClient.from_settings(http, settings)
    assert client.timeout == 7.0
    assert sandbox.secret_key not in repr(client)
    assert {m.name for m in await client.models()} == set(sandbox.models)


async def test_trigger_model_webhook(client: NumeraiClient, sandbox: RunningSandbox) -> None:
    model_id = sandbox.models["beta"]
    # Nothing listens on port 9: the delivery fails, but it is attempted and recorded.
    await client.set_submission_webhook(model_id, "http://127.0.0.1:9/pred/beta")
    trigger_id = await client.trigger_model_webhook(model_id)
    assert uuid.UUID(trigger_id)
    (delivery,) = sandbox.wait_for_webhooks(1)
    assert delivery.payload["triggerId"] == trigger_id
    assert delivery.payload["isTest"] is True


# -- submissions -------------------------------------------------------------------------


async def test_upload_predictions_classic(client: NumeraiClient, sandbox: RunningSandbox) -> None:
    model_id = sandbox.models["alpha"]
    round_number = (await client.current_round()).number
    trigger_id = str(uuid.uuid4())
    submission_id = await client.upload_predictions(
        model_id, classic_csv(sandbox, round_number), "alpha.csv", Tournament.CLASSIC, trigger_id
    )
    (recorded,) = sandbox.submissions()
    assert recorded["id"] == submission_id
    assert recorded["trigger_id"] == trigger_id
    assert recorded["model_id"] == model_id
    assert recorded["round_number"] == round_number

    (listed,) = await client.submissions(model_id)
    assert listed.id == submission_id
    assert listed.trigger_id == trigger_id
    assert listed.round_number == round_number
    assert listed.tournament == 8
    assert listed.inserted_at is not None


@pytest.mark.parametrize(
    ("model", "tournament", "key"),
    [("sig", Tournament.SIGNALS, "numerai_ticker"), ("cry", Tournament.CRYPTO, "symbol")],
)
async def test_upload_predictions_signals_and_crypto(
    client: NumeraiClient, sandbox: RunningSandbox, model: str, tournament: Tournament, key: str
) -> None:
    model_id = sandbox.models[model]
    submission_id = await client.upload_predictions(
        model_id, signals_csv(sandbox, tournament, key), f"{model}.csv", tournament, "trigger-" + model
    )
    (recorded,) = sandbox.submissions()
    assert recorded["id"] == submission_id
    assert recorded["tournament"] == int(tournament)
    assert recorded["trigger_id"] == "trigger-" + model


async def test_upload_steps_one_by_one(client: NumeraiClient, sandbox: RunningSandbox) -> None:
    model_id = sandbox.models["gamma"]
    target = await client.upload_auth(model_id, "/tmp/some/dir/gamma.csv", Tournament.CLASSIC)
    assert "<presigned>" in repr(target)
    await client.put_file(target.url, classic_csv(sandbox, sandbox.settings.start_round))
    submission_id = await client.create_submission(
        model_id, target.filename, Tournament.CLASSIC, trigger_id=None
    )
    assert [s.id for s in await client.submissions(model_id)] == [submission_id]


async def test_an_upload_url_asked_for_earlier_is_used(
    client: NumeraiClient, sandbox: RunningSandbox
) -> None:
    model_id = sandbox.models["alpha"]
    target = await client.upload_auth(model_id, "alpha.csv", Tournament.CLASSIC)
    issued = set(sandbox.sandbox.slots)
    submission_id = await client.upload_predictions(
        model_id, classic_csv(sandbox, sandbox.settings.start_round), "alpha.csv",
        Tournament.CLASSIC, "t-early", target=target,
    )
    assert set(sandbox.sandbox.slots) == issued  # no second upload URL was asked for
    assert [u.status_code for u in sandbox.sandbox.uploads] == [200]
    (recorded,) = sandbox.submissions()
    assert recorded["id"] == submission_id and recorded["trigger_id"] == "t-early"


async def test_a_refused_early_upload_url_is_asked_for_again(
    client: NumeraiClient, sandbox: RunningSandbox
) -> None:
    model_id = sandbox.models["alpha"]
    target = await client.upload_auth(model_id, "alpha.csv", Tournament.CLASSIC)
    expired = dataclasses.replace(target, url=target.url.replace("expires=", "expires=1"))
    submission_id = await client.upload_predictions(
        model_id, classic_csv(sandbox, sandbox.settings.start_round), "alpha.csv",
        Tournament.CLASSIC, "t-again", target=expired,
    )
    assert [u.status_code for u in sandbox.sandbox.uploads] == [403, 200]
    assert len(sandbox.sandbox.slots) == 2  # the refused one, and a fresh one
    (recorded,) = sandbox.submissions()
    assert recorded["id"] == submission_id


async def test_submissions_of_a_model_without_any(
    client: NumeraiClient, sandbox: RunningSandbox
) -> None:
    assert await client.submissions(sandbox.models["beta"]) == []


# -- bad input ---------------------------------------------------------------------------


async def test_wrong_keys_are_refused(sandbox: RunningSandbox, http: httpx.AsyncClient) -> None:
    wrong = NumeraiClient(http, sandbox.url, sandbox.public_id, "wrong-secret", retry=FAST_RETRY)
    with pytest.raises(AuthenticationError) as info:
        await wrong.models()
    assert_no_secret(info.value, "wrong-secret")


async def test_missing_keys_are_refused(anonymous: NumeraiClient, sandbox: RunningSandbox) -> None:
    with pytest.raises(AuthenticationError, match="needs API keys"):
        await anonymous.upload_auth(sandbox.models["alpha"], "a.csv", Tournament.CLASSIC)


async def test_unknown_model_is_not_found(client: NumeraiClient) -> None:
    unknown = str(uuid.uuid4())
    with pytest.raises(NotFoundError):
        await client.upload_auth(unknown, "a.csv", Tournament.CLASSIC)
    with pytest.raises(NotFoundError):
        await client.set_submission_webhook(unknown, "http://127.0.0.1:9/x")
    with pytest.raises(NotFoundError):
        await client.trigger_model_webhook(unknown)


async def test_wrong_tournament_for_the_model(
    client: NumeraiClient, sandbox: RunningSandbox
) -> None:
    with pytest.raises(GraphQLError) as info:
        await client.upload_auth(sandbox.models["alpha"], "a.csv", Tournament.CRYPTO)
    assert "Classic" in info.value.message


async def test_create_submission_without_upload_is_refused(
    client: NumeraiClient, sandbox: RunningSandbox
) -> None:
    with pytest.raises(NotFoundError):
        await client.create_submission(
            sandbox.models["alpha"], "never-uploaded.csv", Tournament.CLASSIC, "t"
        )
    assert sandbox.submissions() == []


async def test_put_to_a_url_never_issued(client: NumeraiClient, sandbox: RunningSandbox) -> None:
    target = await client.upload_auth(sandbox.models["alpha"], "a.csv", Tournament.CLASSIC)
    forged = target.url.replace("a.csv", "b.csv")
    with pytest.raises(UploadError) as info:
        await client.put_file(forged, b"id,prediction\n")
    assert info.value.status_code == 403
    assert not info.value.retryable


async def test_invalid_submission_is_refused(
    client: NumeraiClient, sandbox: RunningSandbox
) -> None:
    with pytest.raises(GraphQLError, match="Invalid submission"):
        await client.upload_predictions(
            sandbox.models["alpha"], b"id,prediction\nx,0.5\n", "a.csv", Tournament.CLASSIC, "t"
        )
    assert sandbox.submissions() == []


async def test_wrong_api_url(http: httpx.AsyncClient, sandbox: RunningSandbox) -> None:
    client = NumeraiClient(http, sandbox.url + "/nothing-here", retry=FAST_RETRY)
    with pytest.raises(NumeraiError, match="check the API URL"):
        await client.current_round()
