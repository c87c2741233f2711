"""The webhook's batch recorder on a real ledger: concurrent records share transactions, and
each caller hears of its own result or error."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import event

from numerai_autopilot.errors import LedgerError
from numerai_autopilot.ledger import Ledger, NewRun, RunState
from numerai_autopilot.runs.recorder import BatchRecorder


def webhook_run(i: int, round_number: int = 700) -> NewRun:
    return NewRun(model_name=f"m{i}", model_id=f"id-{i}", tournament=8,
                  round_number=round_number, trigger_id=f"t{i}", data_version="v5.3",
                  is_test=False, source="webhook")


async def test_concurrent_records_are_each_committed_and_answered(ledger: Ledger) -> None:
    with ThreadPoolExecutor(1) as pool:
        recorder = BatchRecorder(ledger, pool)
        results = await asyncio.gather(*(recorder.record(webhook_run(i)) for i in range(50)))
        again = await recorder.record(webhook_run(7))
    assert [created for _, created in results] == [True] * 50
    assert {run.trigger_id for run, _ in results} == {f"t{i}" for i in range(50)}
    assert again[1] is False and again[0].id == results[7][0].id
    assert sorted(r.trigger_id for r in ledger.runs() if r.state is RunState.QUEUED) == sorted(
        f"t{i}" for i in range(50))


async def test_records_queued_together_share_one_transaction(ledger: Ledger) -> None:
    commits: list[int] = []
    event.listen(ledger.engine, "commit", lambda _conn: commits.append(1))
    with ThreadPoolExecutor(1) as pool:
        recorder = BatchRecorder(ledger, pool)
        first = asyncio.ensure_future(recorder.record(webhook_run(0)))
        await asyncio.sleep(0)  # the first batch is being written: the rest queue behind it
        rest = await asyncio.gather(*(recorder.record(webhook_run(i)) for i in range(1, 40)))
        await first
    assert all(created for _, created in rest)
    assert len(commits) <= 3  # the first run's batch, then the rest together (or in two)


async def test_a_ledger_error_reaches_every_caller_of_the_batch(ledger: Ledger) -> None:
    with ThreadPoolExecutor(1) as pool:
        recorder = BatchRecorder(ledger, pool)
        ledger.close()
        with ledger.engine.connect() as conn:  # the runs table gone: every record fails
            conn.exec_driver_sql("ALTER TABLE runs RENAME TO runs_away")
            conn.commit()
        results = await asyncio.gather(*(recorder.record(webhook_run(i)) for i in range(5)),
                                       return_exceptions=True)
    assert all(isinstance(result, LedgerError) for result in results), results
    assert "could not record a run" in str(results[0])


async def test_quiet_waits_until_queued_runs_are_committed(ledger: Ledger) -> None:
    with ThreadPoolExecutor(1) as pool:
        recorder = BatchRecorder(ledger, pool)
        tasks = [asyncio.ensure_future(recorder.record(webhook_run(i))) for i in range(30)]
        await asyncio.sleep(0)  # the webhooks' handlers queue their runs
        await recorder.quiet(window_s=0.001, longest_s=60)
        assert len(ledger.runs()) == 30  # committed before quiet() returned
        await asyncio.gather(*tasks)


async def test_quiet_returns_at_once_when_nothing_was_recorded(ledger: Ledger) -> None:
    recorder = BatchRecorder(ledger)
    # a window of a minute: only "nothing arrived" lets it return within the test's bound
    await asyncio.wait_for(recorder.quiet(window_s=60, longest_s=120), timeout=10)


async def test_quiet_gives_up_under_a_steady_stream_of_webhooks(ledger: Ledger) -> None:
    with ThreadPoolExecutor(1) as pool:
        recorder = BatchRecorder(ledger, pool)
        waiter = asyncio.create_task(recorder.quiet(window_s=30, longest_s=0.2))
        sent = 0
        while not waiter.done() and sent < 5000:  # a webhook every few ms, never quiet
            await recorder.record(webhook_run(sent))
            sent += 1
            await asyncio.sleep(0.002)
        assert waiter.done(), "quiet() never returned while webhooks kept arriving"
        assert sent < 5000
