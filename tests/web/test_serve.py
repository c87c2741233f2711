"""`autopilot serve` as a real process: with no sign-in configured it prints a one-time sign-in
link (on loopback), and it closes connections that never send a whole request's headers."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_harness import make_config, predictor, sandbox_env
from server_process import ServerProcess

from numerai_autopilot.cli.commands_serve import HEADER_TIMEOUT_S
from numerai_autopilot.sandbox.testing import RunningSandbox

LINK = re.compile(r"dashboard: sign in at (http://127\.0\.0\.1:\d+)(/login\?code=([\w-]+))")


@pytest.fixture
def server(tmp_path: Path, sandbox: RunningSandbox) -> Iterator[ServerProcess]:
    """`autopilot serve` with neither an admin token nor a dashboard user."""
    make_config(tmp_path, sandbox, {"alpha": predictor("good")}, server_admin_token=None)
    process = ServerProcess(tmp_path / "autopilot.toml", sandbox_env(sandbox),
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


def test_a_connection_without_a_request_is_closed_after_the_header_timeout(
    server: ServerProcess,
) -> None:
    silent = socket.create_connection(("127.0.0.1", server.port))
    trickling = socket.create_connection(("127.0.0.1", server.port))
    trickling.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    opened = time.monotonic()
    closed: dict[str, float] = {}
    for sock in (silent, trickling):
        sock.settimeout(0.2)
    while len(closed) < 2 and time.monotonic() < opened + HEADER_TIMEOUT_S + 10:
        with_names = (("silent", silent), ("trickling", trickling))
        for name, sock in with_names:
            if name in closed:
                continue
            try:
                if name == "trickling":
                    sock.sendall(b"X-Slow: 1\r\n")  # a header line now and then
                if sock.recv(1) == b"":
                    closed[name] = time.monotonic() - opened
            except TimeoutError:
                pass
            except OSError:  # reset while sending
                closed[name] = time.monotonic() - opened
        assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
        time.sleep(0.5)
    silent.close()
    trickling.close()
    assert set(closed) == {"silent", "trickling"}, closed
    assert all(HEADER_TIMEOUT_S - 1 <= after <= HEADER_TIMEOUT_S + 3 for after in closed.values()), closed
