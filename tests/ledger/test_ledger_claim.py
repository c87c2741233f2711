from __future__ import annotations

import json
import threading
import time
from collections import Counter

from ledger_helpers import new_run, run_workers

from numerai_autopilot.ledger import Ledger, RunState

S = RunState


def test_claim_takes_oldest_first_and_sets_the_lease(ledger: Ledger) -> None:
    runs = [ledger.record(new_run(round_number=n))[0] for n in range(5)]
    first = ledger.claim("w1", lease_s=30, limit=2)
    assert [r.id for r in first] == [runs[0].id, runs[1].id]
    for run in first:
        assert run.owner == "w1" and run.attempts == 1 and run.lease_until is not None
        assert 29 < (run.lease_until - run.updated_at).total_seconds() <= 30
    assert [r.id for r in ledger.claim("w2", limit=10)] == [r.id for r in runs[2:]]
    assert ledger.claim("w3") == []  # everything is leased


def test_final_runs_are_never_claimed(ledger: Ledger) -> None:
    run, _ = ledger.record(new_run())
    ledger.advance(run.id, S.FAILED, error="config error")
    assert ledger.claim("w1") == []


def test_lease_expiry_resumes_a_crashed_run(ledger: Ledger) -> None:
    run, _ = ledger.record(new_run())
    ledger.claim("crashed", lease_s=0.3)
    ledger.advance(run.id, S.DOWNLOADING, owner="crashed")
    ledger.advance(run.id, S.PREDICTING, owner="crashed")
    assert ledger.claim("rescuer") == []  # lease still live
    time.sleep(0.4)
    [resumed] = ledger.claim("rescuer", lease_s=30)
    assert resumed.id == run.id and resumed.state is S.PREDICTING
    assert resumed.owner == "rescuer" and resumed.attempts == 2
    assert not ledger.renew(run.id, "crashed", 30)
    assert ledger.renew(run.id, "rescuer", 30)
    stages = ledger.stages(run.id)
    assert [(s.state, s.attempt, s.outcome) for s in stages[-2:]] == [
        (S.PREDICTING, 1, "abandoned"),
        (S.PREDICTING, 2, None),
    ]
    assert stages[-2].error == "lease of crashed expired; resumed by rescuer"
    # the new owner carries on from where the run was; re-entering keeps the open stage
    ledger.advance(run.id, S.PREDICTING, owner="rescuer")
    ledger.advance(run.id, S.VALIDATING, owner="rescuer")
    assert [s.state for s in ledger.stages(run.id)].count(S.PREDICTING) == 2


def test_renew_keeps_and_release_returns_the_run(ledger: Ledger) -> None:
    run, _ = ledger.record(new_run())
    ledger.claim("w1", lease_s=0.3)
    assert ledger.renew(run.id, "w1", 30)
    time.sleep(0.4)
    assert ledger.claim("w2") == []  # renewed lease is still live
    ledger.release(run.id, "w2")  # not the owner: no effect
    assert ledger.claim("w2") == []
    ledger.release(run.id, "w1")
    [taken] = ledger.claim("w2")
    assert taken.id == run.id and taken.attempts == 2


def test_unfinished_lists_what_a_restart_resumes(ledger: Ledger) -> None:
    a, _ = ledger.record(new_run(round_number=1))
    b, _ = ledger.record(new_run(round_number=2))
    ledger.claim("w1")
    ledger.advance(a.id, S.DOWNLOADING)
    c, _ = ledger.record(new_run(round_number=3))
    ledger.advance(c.id, S.SKIPPED, error="test")
    assert [r.id for r in ledger.unfinished()] == [a.id, b.id]


def test_threads_never_claim_the_same_run(ledger: Ledger) -> None:
    for n in range(60):
        ledger.record(new_run(round_number=n))
    barrier = threading.Barrier(6)
    claimed: list[str] = []

    def worker(name: str) -> None:
        barrier.wait()
        while batch := ledger.claim(name, lease_s=60, limit=2):
            claimed.extend(run.id for run in batch)

    threads = [threading.Thread(target=worker, args=(f"t{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(claimed) == 60
    assert max(Counter(claimed).values()) == 1
    assert all(run.attempts == 1 for run in ledger.runs(limit=100))


def test_processes_never_claim_the_same_run(ledger: Ledger, ledger_url: str) -> None:
    for n in range(120):
        ledger.record(new_run(round_number=n))
    outputs = run_workers(ledger_url, "claim", 4, "1")
    per_process = [json.loads(out) for out in outputs]
    claimed = [run_id for ids in per_process for run_id in ids]
    assert len(claimed) == 120 and len(set(claimed)) == 120
    assert sum(1 for ids in per_process if ids) >= 2  # they really did compete
    owners = {run.owner for run in ledger.runs(limit=200)}
    assert owners <= {f"proc{i}" for i in range(4)}
    assert all(run.attempts == 1 for run in ledger.runs(limit=200))
