"""1,000 webhooks as fast as a client can send them: 10% duplicates, 10% invalid.

Every accepted webhook has exactly one run; invalid ones none; a duplicate gets the run id of
its original; /healthz answers throughout; the server's memory stays bounded. The triggers
are for three models in one round, so after each model's first run the ledger records the
rest as skipped ("already being run" / "already submitted"): three submissions in all.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from reliability_harness import (
    SECRET,
    ServerProcess,
    Servers,
    assert_submitted_once,
    predictor,
    sandbox_env,
    wait_final,
    write_config,
)

from numerai_autopilot.config.tokens import webhook_token
from numerai_autopilot.ledger import Ledger, RunState
from numerai_autopilot.sandbox.testing import RunningSandbox

MODELS = ("alpha", "beta", "gamma")
TOTAL, DUPLICATES, INVALID = 1000, 100, 100
CONCURRENCY = 64
GiB = 1024**3


@dataclass
class Hook:
    kind: str  # valid, duplicate, bad-token, bad-body, unknown-model
    model_id: str
    token: str
    body: bytes
    trigger: str
    status: int = 0
    answer: Any = None
    latency_s: float = 0.0


def _hooks(sandbox: RunningSandbox, round_number: int) -> list[Hook]:
    rng = random.Random(5)
    ids = [sandbox.models[m] for m in MODELS]

    def payload(trigger: str, round_value: Any = round_number) -> bytes:
        return httpx.Request("POST", "http://x", json={
            "roundNumber": round_value, "dataVersion": 1, "triggerId": trigger}).content

    valid = []
    for i in range(TOTAL - DUPLICATES - INVALID):
        model_id, trigger = ids[i % len(ids)], f"flood-{uuid.uuid4()}"
        valid.append(Hook("valid", model_id, webhook_token(SECRET, model_id), payload(trigger), trigger))
    hooks = list(valid)
    for original in rng.sample(valid, DUPLICATES):
        hooks.append(Hook("duplicate", original.model_id, original.token, original.body, original.trigger))
    for i in range(INVALID):
        model_id, trigger = ids[i % len(ids)], f"invalid-{uuid.uuid4()}"
        token = webhook_token(SECRET, model_id)
        if i % 3 == 0:
            hooks.append(Hook("bad-token", model_id, webhook_token("not-our-secret", model_id),
                              payload(trigger), trigger))
        elif i % 3 == 1:  # not a JSON object: the only bodies refused (an odd round is read)
            body = rng.choice([b'{"roundNumber": 1, "triggerId": "' + trigger.encode() + b'"',
                               b"[" + payload(trigger) + b"]", b"", b"<html>" + payload(trigger)])
            hooks.append(Hook("bad-body", model_id, token, body, trigger))
        else:
            unknown = str(uuid.uuid4())
            hooks.append(Hook("unknown-model", unknown, webhook_token(SECRET, unknown),
                              payload(trigger), trigger))
    rng.shuffle(hooks)
    # a duplicate may overtake its original in flight; both must get the same run
    return hooks


async def _flood(server: ServerProcess, hooks: list[Hook]) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    gate = asyncio.Semaphore(CONCURRENCY)
    health: list[tuple[int, float]] = []
    rss: list[int] = []
    done = asyncio.Event()

    async def send(client: httpx.AsyncClient, hook: Hook) -> None:
        async with gate:
            started = time.perf_counter()
            try:
                response = await client.post(
                    f"/pred/{hook.model_id}", params={"token": hook.token}, content=hook.body,
                    headers={"content-type": "application/json"})
            except httpx.TransportError as exc:  # not delivered: Numerai would see a failure
                hook.answer = repr(exc)
                return
            hook.latency_s = time.perf_counter() - started
            hook.status = response.status_code
            hook.answer = response.json()

    async def watch() -> None:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            while not done.is_set():
                started = time.perf_counter()
                response = await client.get("/healthz")
                health.append((response.status_code, time.perf_counter() - started))
                rss.append(server.rss())
                await asyncio.sleep(0.05)

    async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits) as client:
        watcher = asyncio.create_task(watch())
        started = time.perf_counter()
        await asyncio.gather(*(send(client, hook) for hook in hooks))
        elapsed = time.perf_counter() - started
        done.set()
        await watcher
    return {"elapsed_s": elapsed, "health": health, "rss": rss}


@pytest.mark.slow
def test_a_thousand_webhooks(tmp_path: Path, sandbox: RunningSandbox, servers: Servers) -> None:
    config = write_config(tmp_path, sandbox, {m: predictor("good") for m in MODELS})
    server = servers.start(config, sandbox_env(sandbox), tmp_path / "server.log")
    ledger = Ledger.from_url(f"sqlite:///{tmp_path / 'ledger.db'}")
    round_number = sandbox.state()["current_rounds"]["8"]["number"]
    hooks = _hooks(sandbox, round_number)
    rss_before = server.rss()

    result = asyncio.run(_flood(server, hooks))

    expected = {"valid": 200, "duplicate": 200, "bad-token": 401, "bad-body": 422,
                "unknown-model": 404}
    # A connection the server closed just as the client reused it fails in transit (seen
    # about once in a few thousand pooled requests); such a webhook was not accepted.
    lost = [h for h in hooks if h.status == 0]
    assert len(lost) <= TOTAL // 100, lost[:3]
    wrong = [(h.kind, h.status, h.answer) for h in hooks
             if h.status and h.status != expected[h.kind]]
    assert not wrong, wrong[:5]
    runs = {(r.model_id, r.trigger_id): r for r in ledger.runs(limit=5000)}
    valid = {(h.model_id, h.trigger) for h in hooks if h.kind == "valid"}
    accepted = {(h.model_id, h.trigger) for h in hooks if h.status == 200}
    assert accepted <= set(runs) <= valid, "a run per accepted webhook, none for invalid ones"
    for hook in hooks:
        run = runs.get((hook.model_id, hook.trigger))
        if hook.status == 200:
            assert run is not None and hook.answer["run_id"] == run.id, hook
    created = [h for h in hooks if h.status == 200 and h.answer["created"]]
    assert len(created) == len({(h.model_id, h.trigger) for h in created}), "created twice"

    assert result["health"] and all(status == 200 for status, _ in result["health"])
    growth = max(result["rss"]) - rss_before
    assert growth < 1.5 * GiB

    final = wait_final(ledger, len(runs), timeout=90)
    submitted = [r for r in final if r.state is RunState.SUBMITTED]
    assert sorted(r.model_name for r in submitted) == sorted(MODELS)
    assert all(r.state in (RunState.SUBMITTED, RunState.SKIPPED) for r in final)
    assert_submitted_once(sandbox, ledger, submitted)
    assert len(sandbox.submissions()) == len(MODELS)

    latencies = sorted(h.latency_s for h in hooks if h.status)
    health = sorted(latency for _, latency in result["health"])
    print(
        f"\nflood: {TOTAL} webhooks in {result['elapsed_s']:.1f} s "
        f"({TOTAL / result['elapsed_s']:.0f}/s, concurrency {CONCURRENCY}, {len(lost)} lost in transit); "
        f"answer p50 {statistics.median(latencies) * 1000:.0f} ms, "
        f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms; "
        f"healthz {len(health)} polls, max {health[-1] * 1000:.0f} ms; "
        f"server RSS {rss_before / 2**20:.0f} MiB before, {max(result['rss']) / 2**20:.0f} MiB peak; "
        f"lost: {[(h.kind, str(h.answer)[:60]) for h in lost]}"
    )
    ledger.close()
