"""`autopilot serve` as a real process: with no sign-in configured it prints a one-time sign-in
link (on loopback), an empty secret variable does not replace the file's secret, and it
closes connections that never send a whole request's headers."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_harness import SECRET, make_config, predictor, sandbox_env
from server_process import ServerProcess

from numerai_autopilot.cli.commands_serve import HEADER_TIMEOUT_S
from numerai_autopilot.config import webhook_token
from numerai_autopilot.sandbox.testing import RunningSandbox

LINK = re.compile(r"dashboard: sign in at (http://127\.0\.0\.1:\d+)(/login\?code=([\w-]+))")


@pytest.fixture
def server(tmp_path: Path, sandbox: RunningSandbox) -> Iterator[ServerProcess]:
    """`autopilot serve` with neither an admin token nor a dashboard user, and the secret
    variables set but empty (as `AUTOPILOT_SECRET=` in a shell or a template)."""
    make_config(tmp_path, sandbox, {"alpha": predictor("good")}, server_admin_token=None)
    empty = {"AUTOPILOT_SECRET": "", "AUTOPILOT_SERVER_SECRET": "", "AUTOPILOT_ADMIN_TOKEN": ""}
    process = ServerProcess(tmp_path / "autopilot.toml", {**sandbox_env(sandbox), **empty},
                            tmp_path / "server.log").ready()
    try:
        yield process
    finally:
        process.stop()


def test_the_printed_link_signs_in_once(server: ServerProcess) -> None:
    found = LINK.search(server.log_text())
    assert found, server.log_text()[-3000:]
    base, path, code = found.groups()
    assert base == server.url
    assert server.log_text().count(code) == 1  # printed once, logged nowhere else

    with httpx.Client(base_url=server.url) as attacker:
        assert attacker.get(f"/login?code={code[:-2]}xy").status_code == 401
        assert attacker.get("/").status_code == 303
    with httpx.Client(base_url=server.url) as user:
        signed_in = user.get(path)
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/"
        assert user.get("/").status_code == 200
        assert user.get("/api/runs").status_code == 200  # a session may read the API
    with httpx.Client(base_url=server.url) as late:
        used = late.get(path)
        assert used.status_code == 401 and "used up" in used.text
        assert late.get("/").status_code == 303
    assert server.log_text().count(code) == 1


def test_an_empty_secret_variable_leaves_no_forgeable_token(
    server: ServerProcess, sandbox: RunningSandbox
) -> None:
    """Empty variables are unset: the file's secret stands, so a token made with an empty
    secret (which anyone can compute) is refused, and no admin token is an empty one."""
    model_id = sandbox.models["alpha"]
    body = {"roundNumber": 1, "triggerId": "forged"}
    forged = httpx.post(f"{server.url}/pred/{model_id}/{webhook_token('', model_id)}", json=body)
    assert forged.status_code == 401, forged.text
    real = httpx.post(f"{server.url}/pred/{model_id}/{webhook_token(SECRET, model_id)}",
                      json={"roundNumber": 1, "triggerId": "real", "isTest": True})
    assert real.status_code == 200, real.text


def test_a_connection_without_a_request_is_closed_after_the_header_timeout(
    server: ServerProcess,
) -> None:
    """Slowloris: a silent connection, one trickling its first request's headers, and one
    trickling its second request's after a first was answered, are closed after the header
    timeout; an idle connection after an answer is kept (the 75 s keep-alive)."""
    def answered_once() -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        sock.settimeout(5)
        answer = b""
        while not answer.endswith(b"}"):  # the whole answer: headers, then its JSON body
            answer += sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 200 ")
        return sock

    silent = socket.create_connection(("127.0.0.1", server.port))
    trickling = socket.create_connection(("127.0.0.1", server.port))
    trickling.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    second, idle = answered_once(), answered_once()
    second.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    opened = time.monotonic()
    stalled = {"silent": silent, "trickling": trickling, "second request": second}
    closed: dict[str, float] = {}
    for sock in (*stalled.values(), idle):
        sock.settimeout(0.2)
    while len(closed) < len(stalled) and time.monotonic() < opened + HEADER_TIMEOUT_S + 10:
        for name, sock in stalled.items():
            if name in closed:
                continue
            try:
                if name != "silent":
                    sock.sendall(b"X-Slow: 1\r\n")  # a header line now and then
                if sock.recv(1) == b"":
                    closed[name] = time.monotonic() - opened
            except TimeoutError:
                pass
            except OSError:  # reset while sending
                closed[name] = time.monotonic() - opened
        assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
        time.sleep(0.5)
    with pytest.raises(TimeoutError):  # still open, nothing to read
        idle.recv(1)
    idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    idle.settimeout(5)
    assert idle.recv(4096).startswith(b"HTTP/1.1 200 ")
    for sock in (*stalled.values(), idle):
        sock.close()
    assert set(closed) == set(stalled), closed
    assert all(HEADER_TIMEOUT_S - 1 <= after <= HEADER_TIMEOUT_S + 3 for after in closed.values()), closed
