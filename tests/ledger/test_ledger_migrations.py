from __future__ import annotations

import json
import threading

import pytest
from ledger_helpers import new_run, run_workers
from sqlalchemy import inspect, select, text

from numerai_autopilot.errors import LedgerError
from numerai_autopilot.ledger import LATEST_VERSION, Ledger, RunState
from numerai_autopilot.ledger.schema import metadata, schema_version


def test_fresh_database_reaches_the_latest_version(ledger_url: str) -> None:
    with Ledger.from_url(ledger_url) as ledger:
        assert ledger.schema_version() == 0
        ledger.migrate()
        ledger.migrate()  # idempotent
        assert ledger.schema_version() == LATEST_VERSION
        with ledger.engine.connect() as conn:
            versions = conn.execute(select(schema_version.c.version)).scalars().all()
        assert versions == list(range(1, LATEST_VERSION + 1))


def test_migrated_schema_matches_the_table_definitions(ledger: Ledger) -> None:
    inspector = inspect(ledger.engine)
    for table in metadata.sorted_tables:
        columns = {c["name"] for c in inspector.get_columns(table.name)}
        assert columns == {c.name for c in table.columns}, table.name
        indexes = {i["name"] for i in inspector.get_indexes(table.name)}
        assert indexes >= {i.name for i in table.indexes}, table.name


def test_upgrade_from_v1_keeps_existing_runs(ledger_url: str) -> None:
    with Ledger.from_url(ledger_url) as ledger:
        ledger.migrate(target=1)
        assert ledger.schema_version() == 1
        with ledger.engine.begin() as conn:  # a row written by a v1 autopilot
            conn.execute(
                text(
                    "INSERT INTO runs (id, model_name, model_id, tournament, round_number, "
                    "trigger_id, data_version, is_test, source, resubmit, state, attempts, "
                    "created_at, updated_at) VALUES ('old-run', 'alpha', 'model-alpha', 8, 500, "
                    "'t-old', 'v5.0', false, 'webhook', false, 'uploading', 1, "
                    "'2026-01-01 13:00:00', '2026-01-01 13:05:00')"
                )
            )
        ledger.migrate()
        assert ledger.schema_version() == LATEST_VERSION
        old = ledger.get("old-run")
        assert old is not None and old.state is RunState.UPLOADING
        assert old.detail == {} and old.close_time is None
        assert old.created_at.isoformat() == "2026-01-01T13:00:00+00:00"
        # v2 features work on the upgraded database, on the old run too
        ledger.log("old-run", "info", "resumed after upgrade")
        assert [line.message for line in ledger.logs("old-run")] == ["resumed after upgrade"]
        submitted = ledger.advance(
            "old-run", RunState.SUBMITTED, submission_id="s", detail={"late": True}
        )
        assert submitted.detail == {"late": True}
        run, _ = ledger.record(new_run())
        assert ledger.get(run.id) == run


def test_a_newer_database_is_refused(ledger: Ledger) -> None:
    with ledger.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO schema_version (version, applied_at, description) "
                f"VALUES ({LATEST_VERSION + 1}, '2030-01-01 00:00:00', 'from the future')"
            )
        )
    with pytest.raises(LedgerError, match="upgrade numerai-autopilot"):
        ledger.migrate()
    with pytest.raises(LedgerError, match="does not exist"):
        ledger.migrate(target=LATEST_VERSION + 5)


def test_concurrent_migrate_from_threads(ledger_url: str) -> None:
    with Ledger.from_url(ledger_url) as ledger:
        barrier = threading.Barrier(4)
        errors: list[Exception] = []

        def go() -> None:
            barrier.wait()
            try:
                ledger.migrate()
            except Exception as exc:  # noqa: BLE001 - collected for the assertion
                errors.append(exc)

        threads = [threading.Thread(target=go) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert ledger.schema_version() == LATEST_VERSION


def test_concurrent_migrate_from_processes(ledger_url: str) -> None:
    outputs = run_workers(ledger_url, "migrate", 4)
    assert [json.loads(out) for out in outputs] == [LATEST_VERSION] * 4
    with Ledger.from_url(ledger_url) as ledger, ledger.engine.connect() as conn:
        versions = conn.execute(select(schema_version.c.version)).scalars().all()
    assert sorted(versions) == list(range(1, LATEST_VERSION + 1))


def _insert_v4_run(ledger: Ledger, run_id: str, trigger_id: str, round_number: int) -> None:
    """A queued run as a v4 autopilot wrote it (no column of a later version)."""
    with ledger.engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO runs (id, model_name, model_id, tournament, round_number, trigger_id, "
            "data_version, is_test, source, resubmit, state, attempts, created_at, updated_at) "
            f"VALUES ('{run_id}', 'alpha', 'model-alpha', 8, {round_number}, '{trigger_id}', "
            "'v5.0', false, 'webhook', false, 'queued', 0, '2026-01-01 13:00:00', "
            "'2026-01-01 13:00:00')"
        ))


def test_v5_puts_the_round_first_drops_the_trigger_index_and_keeps_runs(ledger_url: str) -> None:
    with Ledger.from_url(ledger_url) as ledger:
        ledger.migrate(target=4)
        _insert_v4_run(ledger, "old-run", "t-v4", 500)
        ledger.migrate()
        old = ledger.get("old-run")
        assert old is not None
        indexes = {i["name"]: i["column_names"] for i in inspect(ledger.engine).get_indexes("runs")}
        assert indexes["ix_runs_round_model"] == ["round_number", "model_id"]
        assert "ix_runs_model_round" not in indexes and "ix_runs_trigger" not in indexes
        again, created = ledger.record(new_run(trigger_id="t-v5", round_number=500))
        assert ledger.record(new_run(trigger_id="t-v4", round_number=500)) == (old, False)
        assert created and again.state is RunState.SKIPPED  # the round's queued run is found
        assert again.error is not None and old.id in again.error
        if ledger.engine.dialect.name == "sqlite":
            with ledger.engine.connect() as conn:
                plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql(
                    "EXPLAIN QUERY PLAN SELECT id FROM runs WHERE model_id IN ('a', 'b') "
                    "AND round_number IN (500) AND state != 'failed'"))
            assert "ix_runs_round_model" in plan, plan


def test_v6_adds_the_webhook_body_and_keeps_runs(ledger_url: str) -> None:
    with Ledger.from_url(ledger_url) as ledger:
        ledger.migrate(target=5)
        _insert_v4_run(ledger, "old-run", "t-v5", 500)
        ledger.migrate()
        old = ledger.get("old-run")
        assert old is not None and old.webhook_body is None and old.state is RunState.QUEUED
        body = '{"roundNumber": 501, "triggerId": "t-v6", "note": "é <b>"}'
        run, created = ledger.record(new_run(trigger_id="t-v6", round_number=501,
                                             webhook_body=body))
        assert created and ledger.get(run.id) == run and run.webhook_body == body
