"""``autopilot sandbox``: serve a sandbox until interrupted.

    serve(SandboxSettings(data_dir=Path("sandbox-data")), host="127.0.0.1", port=8700)

The control API needs no key, so keep the default host 127.0.0.1 unless the network is yours.
"""

from __future__ import annotations

import shlex
import sys
from typing import TextIO

import uvicorn

from .asgi import create_app
from .settings import TOURNAMENTS, SandboxSettings
from .state import Sandbox


def describe(sandbox: Sandbox, url: str) -> str:
    """The start-up banner. It shows the secret key once, in the `export` lines to paste: on
    start, by design (a sandbox's keys guard nothing)."""
    s = sandbox.settings
    lines = [
        f"Numerai sandbox at {url}  (control API: {url}/_sandbox/state)",
        f"  data:        {s.data_dir} (seed {s.seed}, versions {', '.join(s.data_versions)})",
        f"  public id:   {s.public_id}  (the secret key is in the export lines below)",
        "  models:",
    ]
    for model in sandbox.models.values():
        lines.append(f"    {model.name:<16} {model.id}  ({TOURNAMENTS[model.tournament]})")
    lines.append("  rounds:      " + ", ".join(
        f"{TOURNAMENTS[t]} {rs[-1].number}" for t, rs in sandbox.rounds.items()))
    lines.append(f"  use numerapi: numerapi.base_api.API_TOURNAMENT_URL = {url!r}")
    lines.append("  use autopilot: paste into the shell you run it from (or uncomment "
                 "[numerai] api_url in autopilot.toml):")
    lines += [f"    export {name}={shlex.quote(value)}" for name, value in (
        ("NUMERAI_PUBLIC_ID", s.public_id), ("NUMERAI_SECRET_KEY", s.secret_key),
        ("AUTOPILOT_NUMERAI_API_URL", url))]
    return "\n".join(lines)


def serve(settings: SandboxSettings, host: str = "127.0.0.1", port: int = 8700,
          *, out: TextIO | None = None) -> None:
    """Generate data on first start, print the account, serve until Ctrl-C."""
    out = out or sys.stdout
    print(f"preparing sandbox data in {settings.data_dir} ...", file=out, flush=True)
    sandbox = Sandbox.create(settings)
    app = create_app(sandbox=sandbox)
    shown = f"[{host}]" if ":" in host else host
    print(describe(sandbox, f"http://{shown}:{port}"), file=out, flush=True)
    uvicorn.run(app, host=host, port=port, http="h11", ws="none", log_level="info")
