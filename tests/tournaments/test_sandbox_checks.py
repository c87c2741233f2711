"""The sandbox refuses Signals and Crypto files as numerai-tools would, with its messages."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from numerai_autopilot.numerai import GraphQLError, NumeraiClient
from numerai_autopilot.sandbox.testing import RunningSandbox

KEYS = {11: ("sig", "numerai_ticker"), 12: ("cry", "symbol")}


@pytest.fixture
async def client(sandbox: RunningSandbox) -> AsyncIterator[NumeraiClient]:
    async with httpx.AsyncClient() as http:
        yield NumeraiClient(http, sandbox.url, sandbox.public_id, sandbox.secret_key, timeout=10)


def csv(header: str, tickers: list[str], values: list[str] | None = None) -> bytes:
    values = values or [f"{(i % 89 + 1) / 100:.2f}" for i in range(len(tickers))]
    return (header + "\n" + "".join(f"{t},{v}\n" for t, v in zip(tickers, values))).encode()


def universe(sandbox: RunningSandbox, tournament: int) -> list[str]:
    number = sandbox.sandbox.latest_round(tournament).number
    return sorted(sandbox.sandbox.data.round_keys(tournament, number))


@pytest.mark.parametrize("tournament", [11, 12])
async def test_refusals_follow_numerai_tools(
    client: NumeraiClient, sandbox: RunningSandbox, tournament: int
) -> None:
    name, key = KEYS[tournament]
    tickers = universe(sandbox, tournament)
    cases = {
        # 150 rows, only 60 of this round's universe: numerai-tools counts those only
        csv(f"{key},signal", tickers[:60] + [f"ZZ{i}" for i in range(90)]):
            "invalid_submission_ids: Not enough stocks submitted. Are you using the latest "
            "live ids or live universe? (60 of 150 rows",
        csv(f"{key},signal", tickers[:120] + tickers[:5]):
            f"invalid_submission_ids: Duplicates detected in {key} for live period.",
        csv(f"{key},score", tickers[:120]): "invalid_submission_headers: headers must be one of",
        csv(f"{key},signal", tickers[:120], ["0.5"] * 119 + [""]):
            "invalid_submission_values: submission must not contain NaNs",
        csv(f"{key},signal", tickers[:120], ["0.5"] * 119 + ["1.5"]):
            "invalid_submission_values: values must be between 0 and 1 exclusive",
        csv(f"{key},signal", tickers[:120], ["0.5"] * 120):
            "invalid_submission_values: submission must have non-zero standard deviation",
    }
    model_id = sandbox.models[name]
    for body, message in cases.items():
        with pytest.raises(GraphQLError, match=re.escape(message)):
            await client.upload_predictions(model_id, body, f"{name}.csv", tournament, None)
    assert sandbox.submissions() == []
    # rows outside the universe are dropped, as numerai-tools does, when 100 remain
    body = csv(f"{key},signal", tickers[:100] + ["ZZ1", "ZZ2"])
    await client.upload_predictions(model_id, body, f"{name}.csv", tournament, "t-ok")
    (sub,) = sandbox.submissions()
    assert (sub["tournament"], sub["trigger_id"]) == (tournament, "t-ok")
