"""Latency of Ledger.record(), the ledger call on the webhook path (target p99 <= 20 ms).

    .venv/bin/python bench/ledger_bench.py [--postgres-url URL | --no-postgres] [-n 500]

Three shapes per backend: one caller at a time; a burst of 200 threads released together (200
webhooks at once); 200 calls through a 40-thread pool (what FastAPI's threadpool does for a
sync endpoint; latency counted from submission, so it includes queueing). PostgreSQL runs in
a throwaway schema that is dropped afterwards.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, make_url, text
from sqlalchemy.pool import NullPool

from numerai_autopilot.ledger import Ledger, NewRun

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _new(i: int, model: str) -> NewRun:
    # a mix like a round opening: many models, one trigger each
    return NewRun(
        f"model-{i % 50}",
        f"{model}-{i % 50}",
        8,
        512 + i // 50,
        uuid.uuid4().hex,
        "v5.0",
        False,
        "webhook",
    )


def _summary(name: str, samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)

    def p(q: float) -> float:
        return ms[min(len(ms) - 1, int(q * len(ms)))]

    return (
        f"  {name:<28} n={len(ms):<5} p50={p(0.50):6.2f} ms  p95={p(0.95):6.2f} ms  "
        f"p99={p(0.99):6.2f} ms  max={ms[-1]:6.2f} ms  mean={statistics.fmean(ms):6.2f} ms"
    )


def _timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def sequential(ledger: Ledger, n: int) -> list[float]:
    out = []
    for i in range(n):
        new = _new(i, "seq")
        out.append(_timed(lambda: ledger.record(new)))  # noqa: B023 - called at once
    return out


def burst(ledger: Ledger, n: int) -> list[float]:
    barrier = threading.Barrier(n)
    out: list[float] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        barrier.wait()
        took = _timed(lambda: ledger.record(_new(i, "burst")))
        with lock:
            out.append(took)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def pooled(ledger: Ledger, n: int, workers: int = 40) -> list[float]:
    def one(i: int, submitted: float) -> float:
        ledger.record(_new(i, "pool"))
        return time.perf_counter() - submitted

    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(one, i, time.perf_counter()) for i in range(n)]
        return [f.result() for f in futures]


def bench(name: str, url: str, n: int) -> None:
    with Ledger.from_url(url, pool_size=20, max_overflow=20) as ledger:
        ledger.migrate()
        ledger.record(_new(0, "warmup"))
        print(f"{name}:")
        print(_summary("sequential", sequential(ledger, n)))
        print(_summary("burst of 200 threads", burst(ledger, 200)))
        print(_summary("200 via 40-thread pool", pooled(ledger, 200)))
        duplicates = _timed(lambda: [ledger.record(_new(0, "warmup")) for _ in range(100)])
        print(f"  {'duplicate trigger':<28} {duplicates * 10:6.2f} ms per call (mean of 100)")


@contextmanager
def pg_schema(base: str) -> Iterator[str]:
    schema = f"ledger_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, poolclass=NullPool)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=500, help="sequential calls per backend")
    parser.add_argument("--postgres-url", default=DEFAULT_PG)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument(
        "--sqlite-dir",
        type=Path,
        default=None,
        help="where the SQLite file goes (default: a temporary directory)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        where = args.sqlite_dir or Path(tmp)
        bench("SQLite (WAL, synchronous=FULL)", f"sqlite:///{where / 'bench.db'}", args.n)
    if not args.no_postgres:
        with pg_schema(args.postgres_url) as url:
            bench("PostgreSQL (psycopg 3)", url, args.n)


if __name__ == "__main__":
    main()
