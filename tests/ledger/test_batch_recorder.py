"""The webhook's batch recorder on a real ledger: concurrent records share transactions, and
`quiet()` (what the dispatcher waits for before claiming) holds back while a burst arrives."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from numerai_autopilot.ledger import Ledger, NewRun, RunState
from numerai_autopilot.runs.recorder import BatchRecorder


def new(i: int, round_number: int = 700) -> NewRun:
    return NewRun(model_name=f"m{i}", model_id=f"id-{i}", tournament=8,
                  round_number=round_number, trigger_id=f"t{i}", data_version="v5.3",
                  is_test=False, source="webhook")


async def test_concurrent_records_are_each_committed_and_answered(ledger: Ledger) -> None:
    with ThreadPoolExecutor(1) as pool:
        recorder = BatchRecorder(ledger, pool)
        results = await asyncio.gather(*(recorder.record(new(i)) for i in range(50)))
        again = await recorder.record(new(7))
    assert [created for _, created in results] == [True] * 50
    assert {run.trigger_id for run, _ in results} == {f"t{i}" for i in range(50)}
    assert again[1] is False and again[0].id == results[7][0].id
    assert sorted(r.trigger_id for r in ledger.runs() if r.state is RunState.QUEUED) == sorted(
        f"t{i}" for i in range(50))


async def test_quiet_waits_until_queued_runs_are_committed(ledger: Ledger) -> None:
    with ThreadPoolExecutor(1) as pool:
        recorder = BatchRecorder(ledger, pool)
        futures = [recorder.submit(new(i)) for i in range(30)]
        await recorder.quiet(window_s=0.001, longest_s=60)
        assert all(f.done() for f in futures)
        assert len(ledger.runs()) == 30


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
            await recorder.record(new(sent))
            sent += 1
            await asyncio.sleep(0.002)
        assert waiter.done(), "quiet() never returned while webhooks kept arriving"
        assert sent < 5000


async def test_a_burst_arriving_over_many_turns_of_the_loop_is_one_transaction(
        ledger: Ledger) -> None:
    # A run's created_at is its transaction's clock: one value for a batch's runs.
    with ThreadPoolExecutor(1) as pool:
        recorder = BatchRecorder(ledger, pool, gather_gap_s=0.5, gather_longest_s=60)
        futures = []
        for i in range(40):  # one webhook per turn, as a burst's connections are read
            futures.append(recorder.submit(new(i)))
            await asyncio.sleep(0)
        results = await asyncio.gather(*futures)
    assert all(created for _, created in results)
    assert len({run.created_at for run, _ in results}) == 1


async def test_after_a_stall_the_gap_is_trusted_only_once_the_sockets_were_read(
        ledger: Ledger) -> None:
    # The loop stalls past the gap between two webhooks of a burst; the second is read in
    # the turn after the stall, after the gathering's own check of that turn.
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(1) as pool:
        recorder = BatchRecorder(ledger, pool, gather_gap_s=0.002, gather_longest_s=60)
        futures = [recorder.submit(new(0))]
        loop.call_soon(time.sleep, 0.01)  # the stall: 5 gaps without a turn
        loop.call_soon(loop.call_soon, lambda: futures.append(recorder.submit(new(1))))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert len(futures) == 2
        results = await asyncio.gather(*futures)
    assert len({run.created_at for run, _ in results}) == 1


async def test_an_accepted_connection_holds_the_batch_for_its_webhook(ledger: Ledger) -> None:
    with ThreadPoolExecutor(1) as pool:
        recorder = BatchRecorder(ledger, pool, gather_gap_s=0.005, gather_longest_s=60)
        first = recorder.submit(new(0))
        until = time.perf_counter() + 0.03  # connections keep coming, six gaps long
        while time.perf_counter() < until:
            recorder.expect()
            await asyncio.sleep(0)
        assert not first.done()
        second = recorder.submit(new(1))  # the last connection's webhook
        results = await asyncio.gather(first, second)
    assert len({run.created_at for run, _ in results}) == 1


async def test_a_steady_stream_is_written_in_batches_not_held(ledger: Ledger) -> None:
    with ThreadPoolExecutor(1) as pool:
        recorder = BatchRecorder(ledger, pool, gather_gap_s=60, gather_longest_s=0.05)
        first = recorder.submit(new(0))
        futures = [first]
        while not first.done() and len(futures) < 5000:  # never a gap of a minute
            await asyncio.sleep(0.002)
            futures.append(recorder.submit(new(len(futures))))
        assert first.done(), "the first run was held while webhooks kept arriving"
        results = await asyncio.gather(*futures)
    assert len({run.created_at for run, _ in results}) > 1
    assert len(ledger.runs()) == len(futures)


@pytest.fixture
def collector_on() -> Iterator[None]:
    assert gc.isenabled()
    yield
    gc.enable()  # whatever a failed test left


async def test_the_collector_waits_while_a_batch_is_gathered_written_and_answered(
        ledger: Ledger, collector_on: None) -> None:
    seen: list[bool] = []

    async def webhook(i: int) -> None:
        await recorder.record(new(i))
        seen.append(gc.isenabled())  # where the answer is written

    with ThreadPoolExecutor(1) as pool:
        recorder = BatchRecorder(ledger, pool)
        callers = [asyncio.create_task(webhook(i)) for i in range(20)]
        await asyncio.sleep(0)
        await asyncio.sleep(0)  # the batch is being gathered
        assert not gc.isenabled()
        await asyncio.gather(*callers)
        assert seen == [False] * 20
        await asyncio.sleep(0)
        assert gc.isenabled()
        await recorder.record(new(99))  # the next batch holds it again, and lets it go
        await asyncio.sleep(0)
        assert gc.isenabled()


async def test_the_collector_runs_again_when_a_batch_is_cancelled(
        ledger: Ledger, collector_on: None) -> None:
    recorder = BatchRecorder(ledger, gather_gap_s=60, gather_longest_s=60)
    future = recorder.submit(new(1))
    await asyncio.sleep(0)
    assert not gc.isenabled()
    flusher = recorder._flusher
    assert flusher is not None
    flusher.cancel()  # as at shutdown, when the loop's tasks are cancelled
    with pytest.raises(asyncio.CancelledError):
        await flusher
    assert gc.isenabled()
    future.cancel()


async def test_a_collector_turned_off_elsewhere_stays_off(ledger: Ledger,
                                                          collector_on: None) -> None:
    gc.disable()
    recorder = BatchRecorder(ledger)
    await recorder.record(new(1))
    await asyncio.sleep(0)
    assert not gc.isenabled()
