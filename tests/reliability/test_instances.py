"""Two server processes sharing one PostgreSQL ledger (a fresh database per test).

Webhooks go alternately to both, and the same trigger to both at once (as a load balancer
retrying on another instance would): each run executes exactly once, and the claims are
split between the two owners. Both start together, so their migrations race on the fresh
database. Skipped with the reason when PostgreSQL is unreachable, except when CI=true.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from reliability_harness import (
    AUTH,
    PG_URL,
    Servers,
    assert_submitted_once,
    open_round,
    post_webhook,
    predictor,
    register_webhooks,
    sandbox_env,
    wait_final,
    write_config,
)
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from numerai_autopilot.ledger import Ledger, RunState
from numerai_autopilot.ledger.migrations import LATEST_VERSION
from numerai_autopilot.sandbox.testing import RunningSandbox

pytestmark = pytest.mark.postgres
MODELS = ("alpha", "beta", "gamma")
TEST_TRIGGERS_PER_MODEL = 3


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A URL to a new, empty database, dropped afterwards."""
    admin = create_engine(PG_URL, poolclass=NullPool, isolation_level="AUTOCOMMIT",
                          connect_args={"connect_timeout": 3})
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except (SQLAlchemyError, ImportError) as exc:
        reason = f"PostgreSQL not reachable at {PG_URL}: {str(exc).splitlines()[0]}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: PostgreSQL tests must run)")
        pytest.skip(reason)
    name = f"autopilot_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.slow
def test_two_instances_share_the_ledger_and_run_each_trigger_once(
    tmp_path: Path, sandbox: RunningSandbox, servers: Servers, pg_database: str
) -> None:
    env = sandbox_env(sandbox)
    models = {m: predictor("good") for m in MODELS}
    configs = [write_config(tmp_path / name, sandbox, models, ledger_url=pg_database,
                            server={"run_lease": "10s"})
               for name in ("a", "b")]
    # started together: both migrate the empty database at once
    pair = [servers.start(config, env, config.parent / "server.log", wait=False)
            for config in configs]
    a, b = (server.ready() for server in pair)
    ledger = Ledger.from_url(pg_database)
    assert ledger.schema_version() == LATEST_VERSION

    # a round: alpha and gamma registered on A, beta on B; then every delivery replayed to
    # the other instance too
    register_webhooks(sandbox, a.url, ["alpha", "gamma"])
    register_webhooks(sandbox, b.url, ["beta"])
    opened = open_round(sandbox)
    deliveries = sandbox.wait_for_webhooks(len(MODELS))
    by_id = {sandbox.models[m]: m for m in MODELS}
    replayed = []
    for delivery in deliveries:
        other = b if by_id[delivery.model_id] != "beta" else a
        replayed.append(post_webhook(other.url, delivery.model_id, delivery.payload))

    # test triggers: alternately to A and B, half of them to both at the same moment
    test_hooks = [
        (sandbox.models[m], {"roundNumber": "test", "dataVersion": 1, "isTest": True,
                             "triggerId": f"both-{i}-{uuid.uuid4()}"})
        for i in range(TEST_TRIGGERS_PER_MODEL) for m in MODELS
    ]
    with httpx.Client(timeout=30) as client, ThreadPoolExecutor(8) as pool:
        futures = []
        for i, (model_id, payload) in enumerate(test_hooks):
            targets = [a, b] if i % 2 == 0 else [(a, b)[i % 4 == 1]]
            futures.append([pool.submit(post_webhook, t.url, model_id, payload, client=client)
                            for t in targets])
        answers = [[f.result() for f in group] for group in futures]

    for group in answers:
        assert all(r.status_code == 200 for r in group), [r.text for r in group]
        assert len({r.json()["run_id"] for r in group}) == 1, "one trigger, one run"
        assert sum(r.json()["created"] for r in group) == 1
    assert all(r.status_code == 200 and not r.json()["created"] for r in replayed)

    expected = len(MODELS) + len(test_hooks)
    runs = wait_final(ledger, expected, timeout=90)
    assert len(runs) == expected
    assert_submitted_once(sandbox, ledger, runs)
    assert all(r.attempts == 1 for r in runs), [(r.model_name, r.attempts) for r in runs]
    owners = {r.owner for r in runs}
    assert len(owners) == 2, f"claims not split between the instances: {owners}"
    assert {r.round_number for r in runs if not r.is_test} == {opened["number"]}
    assert all(r.state is RunState.SUBMITTED for r in runs)
    print(f"\nclaims per owner: { {o: sum(r.owner == o for r in runs) for o in owners} }")

    # strings PostgreSQL cannot hold (NUL) are answered, not crashed on
    for path in ("/api/runs/%00", "/api/runs?model=%00", "/api/runs/%00/logs"):
        assert httpx.get(f"{a.url}{path}", headers=AUTH, timeout=30).status_code < 500, path
    ledger.close()
