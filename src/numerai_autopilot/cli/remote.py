"""A small client for a running server's JSON API (`/healthz`, `/api/runs...`), and the
local ledger read the same way.

Used by `autopilot status`, `logs` and `trigger --wait`, against a local server or a Cloud
Run URL. The admin token (`server.admin_token`, env `AUTOPILOT_ADMIN_TOKEN`) is sent as a
Bearer header and appears in no message. When no server answers, `status` and `logs` read
this machine's ledger with `LocalRuns`, which answers as `RemoteServer` does.

    async with httpx.AsyncClient() as http:
        server = RemoteServer(http, "https://autopilot-xyz.a.run.app", token)
        runs = await server.runs(limit=20)
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, Protocol

import httpx
from pydantic import BaseModel

from numerai_autopilot.errors import AutopilotError
from numerai_autopilot.ledger import Ledger, Run, RunState


class RemoteError(AutopilotError):
    """The server could not be reached or refused a request; the message says what to do."""


class ServerUnreachable(RemoteError):
    """No server answers at the URL (nothing listens there, or the host is unknown)."""


class RunSummary(BaseModel):
    """A run as the API shows it (the fields the CLI prints; the others are ignored)."""

    id: str
    model: str
    tournament: int = 8
    round: int | None = None
    is_test: bool = False
    state: RunState
    error: str | None = None
    submission_id: str | None = None

    @classmethod
    def of(cls, run: Run) -> RunSummary:
        return cls(id=run.id, model=run.model_name, tournament=run.tournament,
                   round=run.round_number, is_test=run.is_test, state=run.state,
                   error=run.error, submission_id=run.submission_id)


class LogEntry(BaseModel):
    id: int
    at: datetime
    level: str
    message: str


class RunReader(Protocol):
    """What `status` and `logs` read: a server's API (`RemoteServer`) or the local ledger
    (`LocalRuns`). `where` says which, for messages."""

    @property
    def where(self) -> str: ...

    async def runs(self, *, limit: int = 50) -> list[RunSummary]: ...

    async def run(self, run_id: str) -> RunSummary: ...

    async def logs(self, run_id: str, after: int = 0) -> list[LogEntry]: ...


class RemoteServer:
    """The JSON API of one server; every request has a timeout."""

    def __init__(
        self, http: httpx.AsyncClient, base_url: str, admin_token: str | None,
        timeout: float = 15.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = http
        self._headers = {"Authorization": f"Bearer {admin_token}"} if admin_token else {}
        self._timeout = timeout

    @property
    def where(self) -> str:
        return self.base_url

    async def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        try:
            response = await self._http.get(
                f"{self.base_url}{path}", params={k: v for k, v in (params or {}).items() if v is not None},
                headers=self._headers, timeout=self._timeout,
            )
        except httpx.TimeoutException as exc:
            raise RemoteError(f"{self.base_url} did not answer {path} within "
                              f"{self._timeout:g} s; is the server overloaded?") from exc
        except httpx.TransportError as exc:
            raise ServerUnreachable(
                f"no server answers at {self.base_url} ({type(exc).__name__}); start one with "
                "`autopilot serve` or pass --server URL"
            ) from exc
        if response.status_code == 401:
            raise RemoteError(
                f"{self.base_url} refused the admin token: set AUTOPILOT_ADMIN_TOKEN (or "
                "server.admin_token) to the server's admin token"
            )
        if response.status_code in (400, 404):
            detail = _detail(response)
            raise RemoteError(f"{self.base_url}: {detail}" if detail
                              else f"{self.base_url}{path}: not found")
        if response.status_code >= 400:
            raise RemoteError(f"{self.base_url}{path} answered HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError as exc:
            raise RemoteError(f"{self.base_url}{path} did not answer JSON; is this an "
                              "autopilot server?") from exc

    async def health(self) -> dict[str, Any]:
        body: dict[str, Any] = await self._get("/healthz")
        return body

    async def runs(
        self, *, limit: int = 50, model_id: str | None = None, trigger_id: str | None = None,
    ) -> list[RunSummary]:
        raw = await self._get("/api/runs", {"limit": limit, "model_id": model_id,
                                            "trigger_id": trigger_id})
        return [RunSummary.model_validate(item) for item in raw]

    async def run(self, run_id: str) -> RunSummary:
        """The run with this id, or the one whose id starts with it."""
        return RunSummary.model_validate(await self._get(f"/api/runs/{run_id}"))

    async def logs(self, run_id: str, after: int = 0) -> list[LogEntry]:
        raw = await self._get(f"/api/runs/{run_id}/logs", {"after": after})
        return [LogEntry.model_validate(line) for line in raw]

    async def failing_stage(self, run_id: str) -> str:
        """The stage a failed run was in when it failed (the last stage it entered)."""
        stages = await self._get(f"/api/runs/{run_id}/stages")
        with_error = [str(s["state"]) for s in stages if s.get("error")]
        entered = [str(s["state"]) for s in stages if not RunState(s["state"]).is_final]
        return (with_error or entered or ["queued"])[-1]


class LocalRuns:
    """The local ledger, read as `RemoteServer` reads a server's API (same answers, same
    errors): for `status` and `logs` when no server answers."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    @property
    def where(self) -> str:
        return "the local ledger " + self._ledger.engine.url.render_as_string(hide_password=True)

    async def runs(self, *, limit: int = 50) -> list[RunSummary]:
        found = await asyncio.to_thread(self._ledger.runs, limit=limit)
        return [RunSummary.of(run) for run in found]

    async def run(self, run_id: str) -> RunSummary:
        """The run with this id, or the one whose id starts with it; RemoteError if none."""
        run = await asyncio.to_thread(self._ledger.get_by_prefix, run_id)
        if run is None:
            raise RemoteError(f"no run {run_id!r} in {self.where}")
        return RunSummary.of(run)

    async def logs(self, run_id: str, after: int = 0) -> list[LogEntry]:
        lines = await asyncio.to_thread(self._ledger.logs, run_id, after_id=after)
        return [LogEntry(id=line.id, at=line.at, level=line.level, message=line.message)
                for line in lines]


def _detail(response: httpx.Response) -> str | None:
    """The `detail` of a FastAPI error answer, if it is one."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return None
    return detail if isinstance(detail, str) else None
