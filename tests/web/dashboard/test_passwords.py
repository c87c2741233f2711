"""`python -m numerai_autopilot.web.dashboard.passwords` as a user runs it, and the warning a
plaintext `dashboard_password` gets at start."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from app_harness import ADMIN_TOKEN, SECRET

from numerai_autopilot.config import parse_config
from numerai_autopilot.web import create_app
from numerai_autopilot.web.dashboard import verify_password

COMMAND = [sys.executable, "-W", "error", "-m", "numerai_autopilot.web.dashboard.passwords"]
PASSWORD = "a dashboard password of some length 4b1e"


def test_the_hash_command_reads_stdin_and_prints_a_hash_that_verifies() -> None:
    done = subprocess.run(COMMAND, input=PASSWORD + "\n", capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    printed = done.stdout.strip()
    assert verify_password(PASSWORD, printed) and not verify_password("other", printed)
    assert PASSWORD not in done.stdout + done.stderr
    assert "server.dashboard_password_hash" in done.stderr


def test_the_hash_command_refuses_an_empty_password() -> None:
    done = subprocess.run(COMMAND, input="\n", capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 1 and done.stdout == ""
    assert "empty password" in done.stderr


def test_a_plaintext_password_is_warned_about_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = (f'[server]\nsecret = "{SECRET}"\nadmin_token = "{ADMIN_TOKEN}"\n'
            f'dashboard_user = "ada"\ndashboard_password = "{PASSWORD}"\n')
    config = parse_config(text, source="autopilot.toml", base_dir=tmp_path, env={})
    with caplog.at_level(logging.WARNING):
        create_app(config)
    warning = caplog.text
    assert "server.dashboard_password is stored in plain text" in warning
    assert "python -m numerai_autopilot.web.dashboard.passwords" in warning
    assert PASSWORD not in warning


def test_the_hash_command_on_a_terminal_asks_twice_without_echoing() -> None:
    """As a user runs it by hand: two prompts on the terminal, nothing echoed, the hash."""
    import os
    import pty
    import select

    def run(answers: list[str]) -> tuple[int, str]:
        pid, terminal = pty.fork()
        if pid == 0:  # the child, on the terminal
            os.execv(sys.executable, COMMAND)
        shown, answered = b"", 0
        while True:
            ready, _, _ = select.select([terminal], [], [], 60)
            assert ready, shown
            try:
                chunk = os.read(terminal, 4096)
            except OSError:  # the command ended and closed the terminal
                break
            if not chunk:
                break
            shown += chunk
            asked = shown.count(b"password: ") + shown.count(b"again: ")
            if answered < asked:  # a new prompt (echo is off once it is shown)
                os.write(terminal, answers[answered].encode() + b"\n")
                answered += 1
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status), shown.decode(errors="replace")

    code, shown = run([PASSWORD, PASSWORD])
    assert code == 0, shown
    assert "dashboard password:" in shown and "again:" in shown
    assert PASSWORD not in shown  # not echoed
    [printed] = [w for w in shown.split() if w.startswith("pbkdf2_sha256$")]
    assert verify_password(PASSWORD, printed)
    code, shown = run([PASSWORD, PASSWORD + "x"])
    assert code == 1 and "the two passwords differ" in shown and "pbkdf2_sha256$" not in shown
