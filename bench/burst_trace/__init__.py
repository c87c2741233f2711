"""Where a burst of webhooks goes inside the server: its phases, timed in the server process.

    python -m burst_trace serve -c autopilot.toml   # `autopilot serve`, traced
    .venv/bin/python bench/bursts.py --trace        # what runs it, and prints the medians

`install(path)` wraps, in this process only, the server's steps on a webhook's path:
`WebhookProtocol.connection_made`, `data_received` and `_answer` (the event loop), the
recorder's gathering and batch write (the event loop) and `Ledger.record_many` (the
recorder's thread). Each burst (the first connection or request after 100 ms without any)
becomes one JSON line in `path`, written 50 ms after its last answer:

- `connections` / `requests` / `answers` / `batches`: how many (`requests`: webhooks taken
  for recording); more than one batch means the burst was cut in two;
- `accept_ms`, `read_ms`, `answer_ms`: wall time from the burst's first event to the last
  connection accepted, request read and answer written;
- `loop_read_cpu_ms`: the event loop thread's CPU from the first event to the last request
  read (close to `read_ms` when the loop, not the client, is what reading waits for);
  `ours_read_cpu_ms`: the part of it in our protocol's callbacks;
- `gather_ms`: last request read to the batch's write starting (the recorder's gap);
- `loop_ran_ms`, `loop_runnable_ms`, `loop_blocked_ms`: from the first event to the
  batch's write, the event loop thread's time on a CPU, waiting for one (another process or
  thread had it), and neither (waiting for the GIL or for the sockets); Linux's schedstat;
- `other_threads_ms`: the server's other threads that ran 0.2 ms or more in that time, by
  name (reading every thread's schedstat costs ~0.3 ms at the burst's first event);
- `loop_minor_faults`, `loop_major_faults`: the loop thread's page faults in that time (a
  major one waited for the disk);
- `events`: each connection accepted ("c") and webhook taken ("r"), ms from the start;
- `record_ms`: the batch's write, as the event loop waits for it; `record_cpu_ms` and
  `record_wall_ms`: `Ledger.record_many` itself, in the recorder's thread;
- `answers_ms`: first to last answer; `ours_answer_cpu_ms`: our `_answer` calls.

The wrappers add a few clock reads per request (~2-4 µs here), so a traced burst is slower
than an untraced one by a millisecond or so: compare traced with traced.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import threading
import time
from pathlib import Path
from typing import Any

from numerai_autopilot.ledger.ledger import Ledger
from numerai_autopilot.recorder import BatchRecorder
from numerai_autopilot.server.protocol import WebhookProtocol

QUIET_S = 0.1  # no event for this long: the next one starts a new burst
DUMP_AFTER_S = 0.05  # after the last answer

_wall = time.perf_counter
_cpu = time.thread_time


class _Burst:
    """The running burst's marks (perf_counter seconds) and sums; reset by `event`."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()  # record_many runs in the recorder's thread
        self._last = -1.0
        self._dump: asyncio.TimerHandle | None = None
        self.marks: dict[str, float] = {}
        self.sums: dict[str, float] = {}
        self.threads: dict[int, float] = {}  # thread id: its CPU seconds at the burst's start
        self.faults = (0, 0)  # the loop thread's page faults at the burst's start
        self.loop_faults = (0, 0)  # ... and between the start and the batch's write
        self.events: list[tuple[float, str]] = []  # (perf_counter, "c" connection / "r" request)
        self.others: dict[str, float] = {}  # thread name: its CPU ms until the batch's write

    def event(self) -> float:
        """A connection or a request: starts a new burst after QUIET_S without any."""
        now = _wall()
        if now - self._last > QUIET_S:
            self.marks = {"start": now, "start_cpu": _cpu()}
            self.marks["start_ran"], self.marks["start_waited"] = _schedstat()
            self.faults, self.loop_faults = _faults(), (0, 0)
            self.events, self.others, self.sums = [], {}, {}
            self.threads = _threads_ran()
        self._last = now
        return now

    def add(self, name: str, value: float) -> None:
        with self._lock:
            self.sums[name] = self.sums.get(name, 0.0) + value

    def first(self, name: str, when: float) -> None:
        self.marks.setdefault(name, when)

    def answered(self) -> None:
        if self._dump is not None:
            self._dump.cancel()
        self._dump = asyncio.get_running_loop().call_later(DUMP_AFTER_S, self.write)

    def write(self) -> None:
        marks, sums = self.marks, self.sums
        if "start" not in marks:
            return
        start = marks["start"]

        def ms(name: str) -> float | None:
            return round((marks[name] - start) * 1000, 3) if name in marks else None

        line = {
            "connections": int(sums.get("connections", 0)),
            "requests": int(sums.get("requests", 0)),
            "answers": int(sums.get("answers", 0)),
            "batches": int(sums.get("batches", 0)),
            "accept_ms": ms("last_connection"),
            "read_ms": ms("last_request"),
            "loop_read_cpu_ms": round(sums.get("loop_read_cpu", 0.0) * 1000, 3),
            "ours_read_cpu_ms": round(sums.get("read_cpu", 0.0) * 1000, 3),
            "gather_ms": _span(marks, "last_request", "write_start"),
            "loop_ran_ms": _span(marks, "start_ran", "write_ran"),
            "loop_runnable_ms": _span(marks, "start_waited", "write_waited"),
            "loop_blocked_ms": _blocked(marks),
            "other_threads_ms": self.others,
            "loop_minor_faults": self.loop_faults[0],
            "loop_major_faults": self.loop_faults[1],
            # every accepted connection ("c") and request taken ("r"), ms from the start
            "events": [[round((t - start) * 1000, 3), kind] for t, kind in self.events],
            "record_ms": _span(marks, "write_start", "write_end"),
            "record_cpu_ms": round(sums.get("record_cpu", 0.0) * 1000, 3),
            "record_wall_ms": round(sums.get("record_wall", 0.0) * 1000, 3),
            "answers_ms": _span(marks, "first_answer", "last_answer"),
            "answer_ms": ms("last_answer"),
            "ours_answer_cpu_ms": round(sums.get("answer_cpu", 0.0) * 1000, 3),
        }
        with self._path.open("a") as out:
            out.write(json.dumps(line) + "\n")
        self.marks = {}  # written: a later timer finds nothing to write

    def write_started(self) -> None:
        """The batch's write starts: the loop thread's and the other threads' times so far."""
        self.marks["write_start"] = _wall()
        self.marks["write_ran"], self.marks["write_waited"] = _schedstat()
        minor, major = _faults()
        self.loop_faults = (minor - self.faults[0], major - self.faults[1])
        loop = threading.get_native_id()
        names = {t.native_id: t.name for t in threading.enumerate()}
        for tid, ran in _threads_ran().items():
            spent = (ran - self.threads.get(tid, ran)) * 1000
            if tid != loop and spent >= 0.2:
                self.others[names.get(tid, str(tid))] = round(spent, 3)


def _threads_ran() -> dict[int, float]:
    """Every thread of this process: its time on a CPU so far, in seconds (Linux)."""
    ran: dict[int, float] = {}
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return ran
    for tid in tids:
        on_cpu, _ = _schedstat(f"/proc/self/task/{tid}/schedstat")
        if not math.isnan(on_cpu):  # the thread was still there
            ran[int(tid)] = on_cpu
    return ran


def _faults() -> tuple[int, int]:
    """This thread's page faults so far: (minor, major); a major one waited for the disk."""
    try:
        with open("/proc/thread-self/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0, 0
    return int(fields[7]), int(fields[9])  # minflt, majflt (fields 10 and 12 of proc(5))


def _schedstat(path: str = "/proc/thread-self/schedstat") -> tuple[float, float]:
    """A thread's time on a CPU and waiting for one (runnable), in seconds (Linux); this
    thread's by default, NaN when it cannot be read."""
    try:
        with open(path) as stat:
            ran, waited = stat.read().split()[:2]
    except (OSError, ValueError):
        return float("nan"), float("nan")
    return int(ran) / 1e9, int(waited) / 1e9


def _blocked(marks: dict[str, float]) -> float | None:
    """From the first event to the batch's write: neither running nor runnable (waiting for
    the GIL, or for the sockets)."""
    spans = [_span(marks, *names) for names in (("start", "write_start"),
             ("start_ran", "write_ran"), ("start_waited", "write_waited"))]
    if any(span is None for span in spans):
        return None
    wall, ran, waited = spans
    return round(wall - ran - waited, 3)  # type: ignore[operator]


def _span(marks: dict[str, float], a: str, b: str) -> float | None:
    if a not in marks or b not in marks:
        return None
    return round((marks[b] - marks[a]) * 1000, 3)


def install(path: Path) -> None:
    """Wrap the webhook path's steps in this process; each burst is appended to `path`."""
    burst = _Burst(path)
    connection_made = WebhookProtocol.connection_made
    data_received = WebhookProtocol.data_received
    answer = WebhookProtocol._answer
    gather = BatchRecorder._gather
    write_batch = BatchRecorder._write_batch
    record_many = Ledger.record_many

    def traced_connection_made(self: WebhookProtocol, transport: asyncio.BaseTransport) -> None:
        now = burst.event()
        burst.marks["last_connection"] = now
        burst.events.append((now, "c"))
        burst.add("connections", 1)
        connection_made(self, transport)

    def traced_data_received(self: WebhookProtocol, data: bytes) -> None:
        burst.event()
        began = _cpu()
        waiting = self._answering
        data_received(self, data)
        ended = _cpu()
        burst.add("read_cpu", ended - began)
        if self._answering and not waiting:  # a webhook was taken and is being recorded
            burst.add("requests", 1)
            burst.marks["last_request"] = now = _wall()
            burst.events.append((now, "r"))
            burst.sums["loop_read_cpu"] = ended - burst.marks["start_cpu"]

    def traced_answer(self: WebhookProtocol, *args: Any) -> None:
        began, now = _cpu(), _wall()
        burst.first("first_answer", now)
        answer(self, *args)
        burst.add("answer_cpu", _cpu() - began)
        burst.add("answers", 1)
        burst.marks["last_answer"] = _wall()
        burst.answered()

    async def traced_gather(self: BatchRecorder) -> None:
        await gather(self)
        burst.write_started()

    async def traced_write_batch(self: BatchRecorder) -> None:
        burst.add("batches", 1)
        await write_batch(self)
        burst.marks["write_end"] = _wall()

    def traced_record_many(self: Ledger, news: Any) -> Any:
        began, wall = _cpu(), _wall()
        try:
            return record_many(self, news)
        finally:
            burst.add("record_cpu", _cpu() - began)
            burst.add("record_wall", _wall() - wall)

    # Before the server is built: the recorder binds `ledger.record_many` when created.
    WebhookProtocol.connection_made = traced_connection_made  # type: ignore[method-assign]
    WebhookProtocol.data_received = traced_data_received  # type: ignore[method-assign]
    WebhookProtocol._answer = traced_answer  # type: ignore[method-assign,assignment]
    BatchRecorder._gather = traced_gather  # type: ignore[method-assign]
    BatchRecorder._write_batch = traced_write_batch  # type: ignore[method-assign,assignment]
    Ledger.record_many = traced_record_many  # type: ignore[method-assign]
