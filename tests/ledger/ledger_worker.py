"""A separate process for the ledger's cross-process tests (run as a script, not collected).

    python ledger_worker.py MODE URL START_AT NAME [ARGS...]

Waits until START_AT (a Unix time) so every process hits the database at once, then prints
one JSON document on stdout.
"""

from __future__ import annotations

import json
import sys
import time

from numerai_autopilot.ledger import Ledger, NewRun


def main(argv: list[str]) -> None:
    mode, url, start_at, name, *args = argv
    with Ledger.from_url(url) as ledger:
        if mode != "migrate":
            ledger.ping()
        time.sleep(max(0.0, float(start_at) - time.time()))
        if mode == "claim":
            claimed: list[str] = []
            while batch := ledger.claim(name, lease_s=60.0, limit=int(args[0])):
                claimed.extend(run.id for run in batch)
                time.sleep(0.005)  # "work", so that every process gets a turn
            print(json.dumps(claimed))
        elif mode == "record":
            count, round_arg = int(args[0]), args[1]
            round_number = None if round_arg == "none" else int(round_arg)
            results = []
            for i in range(count):
                new_run = NewRun(
                    "alpha",
                    "model-alpha",
                    8,
                    round_number,
                    f"trigger-{i}",
                    "v5.0",
                    round_number is None,
                    "webhook",
                )
                run, created = ledger.record(new_run)
                results.append([run.id, created])
            print(json.dumps(results))
        elif mode == "migrate":
            ledger.migrate()
            print(json.dumps(ledger.schema_version()))
        else:
            raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
