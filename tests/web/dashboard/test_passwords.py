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
