"""Serve ASGI apps for tests: uvicorn on 127.0.0.1, a free port, a background thread.

    with serve_asgi(app) as url:            # any ASGI app, e.g. a webhook receiver
        httpx.get(url + "/health")

    with running_sandbox(settings) as sb:   # the sandbox, plus helpers over its control API
        sb.url; sb.public_id; sb.secret_key; sb.models["alpha"]
        sb.open_round(); sb.wait_for_webhooks(1); sb.submissions()
        sb.set_webhook_body("cli_mock", model="alpha")   # the shape of alpha's webhook bodies
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from starlette.types import ASGIApp

from .asgi import create_app
from .settings import SandboxSettings
from .state import Sandbox
from .webhooks import WebhookDelivery


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on `host` right now, for a server started by another process."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serve_asgi(app: ASGIApp, *, host: str = "127.0.0.1", startup_timeout: float = 10.0,
               http: str = "h11") -> Iterator[str]:
    """Run ``app`` with uvicorn in a thread; yields its base URL (no trailing slash).
    ``http``: uvicorn's HTTP implementation ("auto", as `autopilot serve` runs, or "h11")."""
    config = uvicorn.Config(app, host=host, port=0, log_level="warning", http=http,
                            lifespan="auto", ws="none", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run()
        except BaseException as exc:  # noqa: BLE001 - surfaced to the caller below
            failure.append(exc)

    thread = threading.Thread(target=run, name="serve_asgi", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if failure or not thread.is_alive():
            raise RuntimeError(f"uvicorn did not start: {failure[0] if failure else 'exited'}")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"uvicorn did not start within {startup_timeout} s")
        time.sleep(0.005)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@dataclass
class RunningSandbox:
    """A sandbox served on 127.0.0.1, with shortcuts over its control API."""

    url: str
    sandbox: Sandbox
    settings: SandboxSettings

    @property
    def public_id(self) -> str:
        return self.settings.public_id

    @property
    def secret_key(self) -> str:
        return self.settings.secret_key

    @property
    def models(self) -> dict[str, str]:
        """Model name -> model id."""
        return self.settings.model_ids()

    @property
    def auth_header(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.public_id}${self.secret_key}"}

    def _control(self, method: str, path: str, json: Any = None) -> Any:
        response = httpx.request(method, f"{self.url}/_sandbox/{path}", json=json, timeout=30)
        response.raise_for_status()
        return response.json()

    def graphql(self, query: str, variables: dict[str, Any] | None = None, *,
                auth: bool = True) -> dict[str, Any]:
        """POST a GraphQL query (with the account's key unless ``auth=False``)."""
        response = httpx.post(self.url + "/", json={"query": query, "variables": variables},
                              headers=self.auth_header if auth else {}, timeout=30)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def set_webhook(self, model: str, url: str | None) -> None:
        """`setSubmissionWebhook` for the model named `model`, as a user does on Numerai."""
        body = self.graphql(
            "mutation($m: String!, $u: String) "
            "{ setSubmissionWebhook(modelId: $m, newSubmissionWebhook: $u) }",
            {"m": self.models[model], "u": url},
        )
        if body.get("errors"):
            raise AssertionError(f"setSubmissionWebhook for {model!r} refused: {body['errors']}")

    def open_round(self, tournament: int = 8, length_s: float | None = None) -> dict[str, Any]:
        """Open the next round (new live ids, open `length_s`, default 1 h); fire webhooks."""
        body: dict[str, Any] = {"tournament": tournament}
        if length_s is not None:
            body["length_s"] = length_s
        result: dict[str, Any] = self._control("POST", "rounds/open", body)
        return result

    def close_round(self, tournament: int = 8) -> dict[str, Any]:
        result: dict[str, Any] = self._control("POST", "rounds/close", {"tournament": tournament})
        return result

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """E.g. ``set_faults(operations={"rounds": {"error_rate": 1.0, "times": 2}})``."""
        result: dict[str, Any] = self._control("POST", "faults", faults)
        return result

    def clear_faults(self) -> None:
        self._control("DELETE", "faults")

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = self._control("GET", "state")
        return result

    def submissions(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._control("GET", "submissions")
        return result

    def uploads(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._control("GET", "uploads")
        return result

    def downloads(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._control("GET", "downloads")
        return result

    def webhooks(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._control("GET", "webhooks")
        return result

    def set_webhook_body(self, body: str, model: str | None = None) -> dict[str, Any]:
        """Send webhook bodies of shape `body` (a `webhooks.BodyShape` value, e.g.
        "cli_mock") to the model named `model`, or by default to every model."""
        request: dict[str, Any] = {"body": body}
        if model is not None:
            request["model"] = model
        result: dict[str, Any] = self._control("POST", "webhooks/body", request)
        return result

    def wait_for_webhooks(self, count: int, timeout: float = 10.0) -> list[WebhookDelivery]:
        """Block until ``count`` webhook deliveries have finished (answered or failed)."""
        return self.sandbox.webhooks.wait(count, timeout)


@contextmanager
def running_sandbox(settings: SandboxSettings) -> Iterator[RunningSandbox]:
    """Create the sandbox (data generated or reused in ``settings.data_dir``) and serve it."""
    app = create_app(settings)
    with serve_asgi(app) as url:
        yield RunningSandbox(url, app.state.sandbox, settings)
