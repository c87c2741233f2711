"""The deploy's own checks, without Google: the public-access check's answers and waits, the
retry of commands IAM has not caught up with, the memory arithmetic, Litestream's config."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx
import pytest

from numerai_autopilot.config import ExecutorConfig, LedgerSettings
from numerai_autopilot.deploy import CommandError, Runner, ServiceCheckError, check_memory_fits
from numerai_autopilot.deploy.health import check_public
from numerai_autopilot.deploy.litestream import litestream_config, sqlite_path
from numerai_autopilot.deploy.runner import PROPAGATION_DELAYS
from numerai_autopilot.errors import ConfigError

URL = "https://autopilot-x.a.run.app"


def answering(*statuses: int) -> tuple[httpx.Client, list[str]]:
    """A client whose requests get `statuses` in turn (the last one from then on)."""
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url} auth={request.headers.get('authorization')}")
        return httpx.Response(statuses[min(len(seen), len(statuses)) - 1])

    return httpx.Client(transport=httpx.MockTransport(handle)), seen


def test_public_check_waits_out_a_binding_that_has_not_applied_yet() -> None:
    client, seen = answering(403, 403, 200)
    waits: list[float] = []
    check_public(URL, service="autopilot", region="r", iam_failed=False, http=client,
                 sleep=waits.append)
    assert seen == [f"GET {URL}/healthz auth=None"] * 3 and waits == [5.0, 5.0]


def test_public_check_stops_at_once_when_gcloud_could_not_set_the_policy() -> None:
    client, seen = answering(403)
    with pytest.raises(ServiceCheckError) as raised:
        check_public(URL, service="autopilot", region="r", iam_failed=True, http=client,
                     sleep=lambda s: None)
    assert len(seen) == 1
    message = str(raised.value)
    assert "answered HTTP 403" in message and "no webhook was registered" in message
    assert "constraints/iam.allowedPolicyMemberDomains" in message
    assert "--member allUsers --role roles/run.invoker" in message


def test_public_check_explains_a_service_that_does_not_start() -> None:
    client, _seen = answering(503)
    with pytest.raises(ServiceCheckError) as raised:
        check_public(URL, service="autopilot", region="r", iam_failed=False, wait_s=0,
                     http=client, sleep=lambda s: None)
    assert "answered HTTP 503" in str(raised.value)
    assert "gcloud run services logs read autopilot --region r" in str(raised.value)


def command(tmp_path: Path, failures: int, message: str) -> list[str]:
    """A command that fails `failures` times with `message` on stderr, then succeeds."""
    count = tmp_path / "count"
    script = (f"import pathlib, sys; p = pathlib.Path({str(count)!r}); "
              "n = int(p.read_text()) if p.exists() else 0; p.write_text(str(n + 1)); "
              f"sys.exit(0) if n >= {failures} else sys.exit(print({message!r}, "
              "file=sys.stderr) or 1)")
    return [sys.executable, "-c", script]


def test_bindings_are_retried_while_iam_has_not_propagated_the_account(tmp_path: Path) -> None:
    notes: list[str] = []
    waits: list[float] = []
    runner = Runner(dry_run=False, echo=notes.append, sleep=waits.append)
    done = runner.run_until_propagated(command(
        tmp_path, 2, "ERROR: INVALID_ARGUMENT: Service account a@p.iam.gserviceaccount.com does "
                     "not exist."))
    assert done.returncode == 0 and waits == list(PROPAGATION_DELAYS[:2])
    assert sum("not propagated" in n for n in notes) == 2


def test_other_failures_are_not_retried_and_retries_end(tmp_path: Path) -> None:
    runner = Runner(dry_run=False, echo=lambda line: None, sleep=lambda s: None)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(CommandError, match="exit code 1"):
        runner.run_until_propagated(command(tmp_path / "a", 1, "PERMISSION_DENIED"))
    assert (tmp_path / "a" / "count").read_text() == "1"
    with pytest.raises(CommandError, match="still does not exist after ~2 minutes"):
        runner.run_until_propagated(command(tmp_path / "b", 99, "Service account x does not exist"))
    assert (tmp_path / "b" / "count").read_text() == str(len(PROPAGATION_DELAYS) + 1)


def test_memory_counts_local_workers_only() -> None:
    fits = ExecutorConfig(workers=2, memory_limit="1.75GiB")
    check_memory_fits(fits, "4Gi", source="a.toml")  # 3.5 GiB + 0.5 GiB: exactly
    with pytest.raises(ConfigError, match=r"--memory 5Gi"):
        check_memory_fits(ExecutorConfig(workers=2, memory_limit="2GiB"), "4Gi", source="a.toml")
    check_memory_fits(ExecutorConfig(scheduler="tcp://10.0.0.5:8786", workers=8), "1Gi",
                      source="a.toml")
    with pytest.raises(ConfigError, match="fewer executor.workers"):
        check_memory_fits(ExecutorConfig(workers=8), "1Gi", source="a.toml")
    with pytest.raises(ConfigError, match="not a size"):
        check_memory_fits(fits, "lots", source="a.toml")


def test_memory_counts_the_environments_workers_too() -> None:
    fits = ExecutorConfig(workers=1, memory_limit="1.75GiB")
    check_memory_fits(fits, "4Gi", source="a.toml", environment_workers=1)
    with pytest.raises(ConfigError, match=r"3 workers \(2 of them environments'\) x 1.75 GiB"):
        check_memory_fits(fits, "4Gi", source="a.toml", environment_workers=2)


def test_litestream_config_names_the_ledger_file_and_its_replica(tmp_path: Path) -> None:
    ledger = LedgerSettings(url=f"sqlite:///{tmp_path}/ledger.db", replica="gs://b/ledger")
    db = sqlite_path(ledger)
    assert db == tmp_path / "ledger.db"
    assert json.loads(litestream_config(db, "gs://b/ledger")) == {
        "dbs": [{"path": str(db), "replica": {"url": "gs://b/ledger"}}],
        "shutdown-sync-timeout": "4s",
    }
    with pytest.raises(ConfigError, match="not a SQLite file") as raised:
        sqlite_path(LedgerSettings(url="postgresql+psycopg://u:secret@h/db"))
    assert "secret" not in str(raised.value)
