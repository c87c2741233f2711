"""The executor's queue: which task goes next and with how many threads (`Slots`), played
with tasks that hold their slot for a while."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from numerai_autopilot.executor.slots import REMAINDER_MIN_S, SOLO_MIN_S, Expected, Slots

pytestmark = pytest.mark.asyncio

# what earlier runs on two threads say: kept both busy (scales), or only one (does not)
SCALES = {"wide_thread_s": SOLO_MIN_S / 2, "busy": 0.95}
FLAT = {"wide_thread_s": 2.0, "busy": 0.5}


async def _round(slots: Slots, expected: list[Expected | None], hold_s: float = 0.05
                 ) -> list[tuple[int, float, float]]:
    """Each task's (threads, start, end) on the loop's clock, in the order they asked."""
    loop = asyncio.get_running_loop()
    seen: list[tuple[int, float, float]] = [(0, 0.0, 0.0)] * len(expected)

    async def task(i: int) -> None:
        async with slots.slot(expected[i]) as threads:
            start = loop.time()
            await asyncio.sleep(hold_s)
            seen[i] = (threads, start, loop.time())

    await asyncio.gather(*(task(i) for i in range(len(expected))))
    return seen


async def test_a_lone_task_gets_every_core_and_many_share_them() -> None:
    slots = Slots(cores=lambda: 4, capacity=lambda: 8)
    assert [t for t, _, _ in await _round(slots, [None])] == [4]
    assert [t for t, _, _ in await _round(slots, [None, None])] == [2, 2]
    assert [t for t, _, _ in await _round(slots, [None] * 8)] == [1] * 8


async def test_a_rounds_remainder_runs_first_on_the_free_cores() -> None:
    # 3 tasks on 2 cores: one on both cores, alone, then two on one each (not two, then a
    # last one on one thread while a core stands idle)
    slots = Slots(cores=lambda: 2, capacity=lambda: 4)
    seen = await _round(slots, [None, None, None])
    (wide, _, end), rest = seen[0], seen[1:]
    assert wide == 2 and [t for t, _, _ in rest] == [1, 1]
    assert all(s >= end for _, s, _ in rest)  # nothing beside the wide task

    # 6 on 4 cores: the remainder of two side by side on two threads each, then four
    slots = Slots(cores=lambda: 4, capacity=lambda: 8)
    seen = await _round(slots, [None] * 6)
    assert [t for t, _, _ in seen] == [2, 2, 1, 1, 1, 1]
    assert seen[1][1] < seen[0][2]  # the two wide ones together
    assert min(s for _, s, _ in seen[2:]) >= max(e for _, _, e in seen[:2])


async def test_a_remainder_of_known_models_runs_first_when_its_tail_would_matter() -> None:
    # not solo (shorter than SOLO_MIN_S on one thread), but three side by side on 2 cores
    # would end on one thread while a core stands idle
    slots = Slots(cores=lambda: 2, capacity=lambda: 4)
    between = (REMAINDER_MIN_S + SOLO_MIN_S) / 2
    scales = Expected(between, one_thread_s=between, **SCALES)
    assert scales.scales and not scales.solo and scales.widens
    seen = await _round(slots, [scales] * 3)
    assert [t for t, _, _ in seen] == [2, 1, 1]
    assert all(s >= seen[0][2] for _, s, _ in seen[1:])
    # one that does not scale, or a short one, gains nothing from a second core
    for known in (Expected(between, **FLAT), Expected(REMAINDER_MIN_S / 2)):
        assert not known.widens
        assert [t for t, _, _ in await _round(slots, [known] * 3)] == [1, 1, 1]


async def test_a_wide_task_holds_the_others_back_for_a_while_only() -> None:
    # a wide model that hangs or runs long: after `hold_s` the others start beside it
    slots = Slots(cores=lambda: 2, capacity=lambda: 4, hold_s=0.1)
    seen = await _round(slots, [None, None, None], hold_s=0.5)
    (wide, start, end), rest = seen[0], seen[1:]
    assert wide == 2 and [t for t, _, _ in rest] == [1, 1]
    assert all(start + 0.1 <= s < end for _, s, _ in rest)


async def test_a_cluster_of_several_machines_runs_no_remainder_first_and_none_solo() -> None:
    slots = Slots(cores=lambda: 2, capacity=lambda: 4, one_machine=False)
    assert [t for t, _, _ in await _round(slots, [None, None, None])] == [1, 1, 1]
    assert [t for t, _, _ in await _round(slots, [Expected(2.0, **SCALES)] * 3)] == [1, 1, 1]


async def test_short_tasks_never_hold_the_others_back() -> None:
    slots = Slots(cores=lambda: 2, capacity=lambda: 4)
    seen = await _round(slots, [Expected(SOLO_MIN_S / 10)] * 3)
    assert [t for t, _, _ in seen] == [1, 1, 1]
    assert seen[1][1] < seen[0][2]  # side by side


async def test_the_longest_expected_go_first_and_capacity_holds() -> None:
    slots = Slots(cores=lambda: 1, capacity=lambda: 2)
    loop = asyncio.get_running_loop()
    starts: dict[str, float] = {}
    running = 0
    most = 0

    async def task(name: str, seconds: float | None) -> None:
        expected = Expected(seconds, **FLAT) if seconds is not None else None
        nonlocal running, most
        async with slots.slot(expected):
            starts[name] = loop.time()
            running += 1
            most = max(most, running)
            await asyncio.sleep(0.02)
            running -= 1

    await asyncio.gather(task("quick", 0.1), task("slow", 30.0), task("new", None),
                         task("medium", 5.0))
    assert sorted(starts, key=starts.__getitem__) == ["new", "slow", "medium", "quick"]
    assert most == 2


async def test_long_models_that_scale_run_one_after_another_on_every_core() -> None:
    # side by side, such models slow each other down; a model never run wide is tried so
    slots = Slots(cores=lambda: 2, capacity=lambda: 4)
    long = SOLO_MIN_S * 2
    seen = await _round(slots, [Expected(long, **SCALES), Expected(long),
                                Expected(long, **SCALES)])
    assert [t for t, _, _ in seen] == [2, 2, 2]
    spans = sorted((s, e) for _, s, e in seen)
    assert all(later >= end for (_, end), (later, _) in itertools.pairwise(spans))


async def test_solo_models_go_first_and_those_that_do_not_scale_share_the_cores() -> None:
    slots = Slots(cores=lambda: 2, capacity=lambda: 4)
    long = SOLO_MIN_S * 2
    flat, quick, solo = (Expected(long * 2, **FLAT), Expected(SOLO_MIN_S / 10),
                         Expected(long, **SCALES))
    seen = await _round(slots, [flat, flat, quick, solo])
    assert seen[3][0] == 2 and all(s >= seen[3][2] for _, s, _ in seen[:3])  # solo first
    assert [t for t, _, _ in seen[:3]] == [1, 1, 1]
    assert seen[1][1] < seen[0][2]  # the two that do not scale side by side


async def test_a_solo_model_holds_the_others_back_for_twice_its_time_only() -> None:
    # a solo model that hangs: the others start beside it once twice its expected time passed
    slots = Slots(cores=lambda: 2, capacity=lambda: 4, hold_s=0.1)
    solo = Expected(0.5, one_thread_s=SOLO_MIN_S, **SCALES)
    seen = await _round(slots, [solo, solo, solo], hold_s=1.0 + 1.0)
    (wide, start, end), rest = seen[0], seen[1:]
    assert wide == 2
    assert all(start + 1.0 <= s < end for _, s, _ in rest), seen


async def test_a_solo_models_hold_counts_from_when_its_data_is_there() -> None:
    # loaded while the round's data downloads: a download longer than the hold does not
    # let the others start beside it
    slots = Slots(cores=lambda: 2, capacity=lambda: 4, hold_s=0.1)
    solo = Expected(0.2, one_thread_s=SOLO_MIN_S, **SCALES)  # holds the others 0.4 s
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()
    loop.call_later(0.5, ready.set_result, None)
    seen: dict[str, tuple[int, float, float]] = {}

    async def task(name: str, runs_s: float) -> None:
        async with slots.slot(solo, ready) as threads:
            start = loop.time()
            await asyncio.sleep(runs_s)
            seen[name] = (threads, start, loop.time())

    await asyncio.gather(task("first", 0.5 + 0.2), task("second", 0.05), task("third", 0.05))
    (threads, _, end), rest = seen.pop("first"), seen.values()
    assert threads == 2 and all(start >= end for _, start, _ in rest), seen


async def test_what_a_run_says_about_scaling() -> None:
    assert Expected.of_run(2.0, 3.6, threads=2) == Expected(2.0, wide_thread_s=4.0, busy=0.9)
    assert Expected.of_run(2.0, 3.6, threads=2).scales is True
    assert Expected.of_run(2.0, 2.2, threads=2).scales is False  # one core of two busy
    # on one thread earlier: side by side that took 6.5 s, so 2 x 2.0 s one after the other
    # is sooner; 3.8 s is not (two side by side took 3.8 s for both)
    narrow = Expected.of_run(6.5, 6.5, threads=1)
    assert narrow == Expected(6.5, one_thread_s=6.5) and narrow.scales is None
    wide = Expected.of_run(2.0, 3.9, threads=2, before=narrow)
    assert wide.scales is True
    assert Expected.of_run(2.0, 3.9, threads=2,
                           before=Expected.of_run(3.8, 3.8, threads=1)).scales is False
    # runs are averaged, each new one weighing half: one slow run does not decide
    slow = Expected.of_run(4.5, 8.8, threads=2, before=wide)  # 9 thread-seconds, after 4
    assert slow.wide_thread_s == 6.5 and slow.scales is False  # 6.5 < 1.05 x 6.5
    assert Expected.of_run(2.0, 3.9, threads=2, before=slow).scales is True  # 6.5 >= 1.05 x 5.25
    # a run on one thread counts too, and a run without a CPU time says nothing of scaling
    assert Expected.of_run(9.0, 9.0, threads=1, before=slow).scales is True  # 7.75 >= 1.05 x 6.5
    assert Expected.of_run(6.0, None, threads=2, before=narrow) == Expected(6.0, one_thread_s=6.5)
    assert Expected(SOLO_MIN_S).solo and not Expected(SOLO_MIN_S, **FLAT).solo
    assert not Expected(SOLO_MIN_S / 2, **SCALES).solo
    # long on one thread, though quick on several
    assert Expected(SOLO_MIN_S / 3, one_thread_s=SOLO_MIN_S, **SCALES).solo
    assert not Expected(SOLO_MIN_S, one_thread_s=SOLO_MIN_S / 2, **SCALES).solo
