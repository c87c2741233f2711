"""A small client for a running server's JSON API (`/healthz`, `/api/runs...`).

Used by `autopilot status`, `logs` and `trigger --wait`, against a local server or a Cloud
Run URL. The admin token (`server.admin_token`, env `AUTOPILOT_ADMIN_TOKEN`) is sent as a
Bearer header and appears in no message.

    async with httpx.AsyncClient() as http:
        server = RemoteServer(http, "https://autopilot-xyz.a.run.app", token)
        runs = await server.runs(limit=20)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from numerai_autopilot.config import AppConfig
from numerai_autopilot.errors import AutopilotError

FINAL_STATES = frozenset({"submitted", "failed", "skipped"})


class RemoteError(AutopilotError):
    """The server could not be reached or refused a request; the message says what to do."""


@dataclass(frozen=True, slots=True)
class RunSummary:
    """A run as the API shows it (the fields the CLI prints)."""

    id: str
    model: str
    model_id: str
    round: int | None
    trigger_id: str
    is_test: bool
    state: str
    error: str | None
    submission_id: str | None
    created_at: datetime

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> RunSummary:
        return cls(
            id=str(raw["id"]), model=str(raw["model"]), model_id=str(raw["model_id"]),
            round=raw.get("round"), trigger_id=str(raw["trigger_id"]),
            is_test=bool(raw.get("is_test")), state=str(raw["state"]), error=raw.get("error"),
            submission_id=raw.get("submission_id"),
            created_at=datetime.fromisoformat(str(raw["created_at"])),
        )


@dataclass(frozen=True, slots=True)
class StageSummary:
    state: str
    attempt: int
    error: str | None


@dataclass(frozen=True, slots=True)
class LogEntry:
    id: int
    at: datetime
    level: str
    message: str


def default_server_url(config: AppConfig) -> str:
    """`server.public_url` when set, else this machine's server on its configured port."""
    if config.server.public_url:
        return config.server.public_url.rstrip("/")
    return f"http://127.0.0.1:{config.server.port}"


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
        url = f"{self.base_url}{path}"
        try:
            response = await self._http.get(
                url, params={k: v for k, v in (params or {}).items() if v is not None},
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
        self, *, limit: int = 50, model: str | None = None, model_id: str | None = None,
        trigger_id: str | None = None,
    ) -> list[RunSummary]:
        raw = await self._get("/api/runs", {"limit": limit, "model": model,
                                            "model_id": model_id, "trigger_id": trigger_id})
        return [RunSummary.from_json(item) for item in raw]

    async def run(self, run_id: str) -> RunSummary:
        return RunSummary.from_json(await self._get(f"/api/runs/{run_id}"))

    async def stages(self, run_id: str) -> list[StageSummary]:
        raw = await self._get(f"/api/runs/{run_id}/stages")
        return [StageSummary(state=s["state"], attempt=int(s["attempt"]), error=s.get("error"))
                for s in raw]

    async def logs(self, run_id: str, after: int = 0) -> list[LogEntry]:
        raw = await self._get(f"/api/runs/{run_id}/logs", {"after": after})
        return [LogEntry(id=int(line["id"]), at=datetime.fromisoformat(str(line["at"])),
                         level=str(line["level"]), message=str(line["message"])) for line in raw]

    async def failing_stage(self, run: RunSummary) -> str:
        """The stage a failed run was in when it failed (the last stage it entered)."""
        stages = await self.stages(run.id)
        with_error = [s for s in stages if s.error]
        if with_error:
            return with_error[-1].state
        started = [s for s in stages if s.state not in FINAL_STATES]
        return started[-1].state if started else "queued"
