"""Model names to ids (against the sandbox's account over HTTP), and the run built for a model."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from numerai_autopilot.config import ModelConfig
from numerai_autopilot.errors import ConfigError
from numerai_autopilot.ledger import Ledger
from numerai_autopilot.numerai import NumeraiClient, RetryPolicy
from numerai_autopilot.runs import ModelIds, new_run
from numerai_autopilot.sandbox.testing import RunningSandbox

SOURCE = "/srv/autopilot.toml"
GHOST_ID = "00000000-dead-beef-0000-000000000000"


class Counted:
    def __init__(self) -> None:
        self.sent = 0

    async def __call__(self, request: httpx.Request) -> None:
        self.sent += 1


@pytest.fixture
async def counted(sandbox: RunningSandbox) -> AsyncIterator[tuple[NumeraiClient, Counted]]:
    counter = Counted()
    async with httpx.AsyncClient(event_hooks={"request": [counter]}) as http:
        yield NumeraiClient(http, sandbox.url, sandbox.public_id, sandbox.secret_key,
                            retry=RetryPolicy(initial=0.01, maximum=0.05, deadline_s=10.0),
                            timeout=10), counter


def model(name: str, model_id: str | None = None) -> ModelConfig:
    return ModelConfig(name=name, predictor="predictors.py:predict", model_id=model_id)


async def test_configured_ids_are_taken_without_asking_numerai(
    sandbox: RunningSandbox, counted: tuple[NumeraiClient, Counted]
) -> None:
    client, counter = counted
    alpha = model("alpha", sandbox.models["alpha"])
    ids = ModelIds({"alpha": alpha}, SOURCE)
    await ids.resolve(client)
    assert counter.sent == 0 and ids.missing == []
    assert ids.id_of("alpha") == sandbox.models["alpha"]
    assert await ids.model_for_id(sandbox.models["alpha"], client) == alpha
    assert await ids.model_for_id("other", client) is None and counter.sent == 0


async def test_names_are_resolved_once_from_the_account(
    sandbox: RunningSandbox, counted: tuple[NumeraiClient, Counted]
) -> None:
    client, counter = counted
    ids = ModelIds({"alpha": model("alpha", sandbox.models["alpha"]), "beta": model("beta")},
                   SOURCE)
    assert ids.get("beta") is None and ids.missing == ["beta"]
    with pytest.raises(ConfigError, match=re.escape(f"{SOURCE}: models.beta: no model id yet")):
        ids.id_of("beta")
    await asyncio.gather(*(ids.resolve(client) for _ in range(5)))
    assert counter.sent == 1  # the account asked once, for the name lacking an id
    assert ids.id_of("beta") == sandbox.models["beta"]
    assert await ids.model_for_id(sandbox.models["beta"], client) is not None


async def test_a_name_not_on_the_account_names_the_file_the_model_and_the_account(
    sandbox: RunningSandbox, counted: tuple[NumeraiClient, Counted]
) -> None:
    client, _ = counted
    ids = ModelIds({"beta": model("beta"), "ghost": model("ghost")}, SOURCE)
    with pytest.raises(ConfigError) as refused:
        await ids.resolve(client)
    message = str(refused.value)
    assert message.startswith(f"{SOURCE}: models.ghost: no model with name 'ghost' on this "
                              "Numerai account (it has: alpha, beta, cry, gamma, sig)")
    assert "set models.ghost.model_id or fix the name" in message
    assert ids.id_of("beta") == sandbox.models["beta"]  # learnt all the same
    # A webhook for an unknown id is answered 404, not with an error.
    assert await ids.model_for_id(GHOST_ID, client) is None


async def test_checked_looks_up_configured_ids_too(
    sandbox: RunningSandbox, counted: tuple[NumeraiClient, Counted]
) -> None:
    client, _ = counted
    ids = ModelIds({"alpha": model("alpha", sandbox.models["alpha"]), "beta": model("beta"),
                    "ghost": model("ghost", GHOST_ID)}, SOURCE)
    assert await ids.checked(client, only="beta") == {"beta": sandbox.models["beta"]}
    with pytest.raises(ConfigError, match=re.escape(
            f"{SOURCE}: models.ghost: no model with model_id {GHOST_ID} on this Numerai "
            "account (it has: alpha, beta, cry, gamma, sig); fix models.ghost.model_id")):
        await ids.checked(client)


def test_a_run_carries_numerais_trigger_or_one_of_ours(tmp_path: Path) -> None:
    ledger = Ledger.from_url(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.migrate()
    try:
        alpha = model("alpha", "m-1").model_copy(update={"resubmit": True})
        webhook, _ = ledger.record(new_run(alpha, "m-1", source="webhook", round_number=512,
                                           trigger_id="numerai-trigger"))
        manual, _ = ledger.record(new_run(alpha, "m-1", source="manual", round_number=512))
        watcher, _ = ledger.record(new_run(alpha, "m-1", source="watcher", round_number=513))
    finally:
        ledger.close()
    assert webhook.numerai_trigger_id == "numerai-trigger" and webhook.resubmit
    assert manual.trigger_id.startswith("manual-") and manual.numerai_trigger_id is None
    assert watcher.trigger_id == "watcher-round-513" and watcher.numerai_trigger_id is None
    # a webhook body without a usable trigger id: one of ours, from the round when it is known
    # and not a test (a repeated delivery is then one run), fresh otherwise; never sent back
    assert new_run(alpha, "m-1", source="webhook", round_number=512).trigger_id == (
        "webhook-round-512")
    fresh = {new_run(alpha, "m-1", source="webhook", round_number=None).trigger_id,
             new_run(alpha, "m-1", source="webhook", round_number=512, is_test=True).trigger_id}
    assert len(fresh) == 2 and all(t.startswith("webhook-") and "round" not in t for t in fresh)
    with pytest.raises(ValueError, match="keeps the trigger id of the run it repeats"):
        new_run(alpha, "m-1", source="rerun", round_number=512)
