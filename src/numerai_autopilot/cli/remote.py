"""A small client for a running server's JSON API (`/healthz`, `/api/runs...`).

Used by `autopilot status`, `logs` and `trigger --wait`, against a local server or a Cloud
Run URL. The admin token (`server.admin_token`, env `AUTOPILOT_ADMIN_TOKEN`) is sent as a
Bearer header and appears in no message.

    async with httpx.AsyncClient() as http:
        server = RemoteServer(http, "https://autopilot-xyz.a.run.app", token)
        runs = await server.runs(limit=20)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
from pydantic import BaseModel

from numerai_autopilot.errors import AutopilotError
from numerai_autopilot.ledger import RunState


class RemoteError(AutopilotError):
    """The server could not be reached or refused a request; the message says what to do."""


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


class LogEntry(BaseModel):
    id: int
    at: datetime
    level: str
    message: str


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
            raise RemoteError(
                f"no server answers at {self.base_url} ({type(exc).__name__}); start one with "
                "`autopilot serve` or pass --server URL"
            ) from exc
        if response.status_code == 401:
            raise RemoteError(
                f"{self.base_url} refused the admin token: set AUTOPILOT_ADMIN_TOKEN (or "
                "server.admin_token) to the server's admin token"
            )
        if response.status_code == 404:
            raise RemoteError(f"{self.base_url}{path}: not found")
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
