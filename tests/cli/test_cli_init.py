"""From `autopilot init` to the sandbox, as a new user goes (real processes, real files): no
secret in autopilot.toml, a private .env file the commands read, weak secrets refused, the
sandbox's export lines, and doctor asking for the example model's real name."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from numerai_autopilot.config import (
    MAKE_ONE,
    check_secret,
    literal_secrets,
    read_env_file,
    webhook_token,
)
from numerai_autopilot.sandbox.testing import free_port

pytestmark = pytest.mark.timeout(300)
MODEL_ID = "0d6a4c8e-0000-4000-8000-000000000001"
OTHER = "from-the-environment-secret-5e1a9c3f7b2d"


def autopilot(*args: str, cwd: Path, env: dict[str, str] | None = None
              ) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("AUTOPILOT_", "NUMERAI_"))}
    return subprocess.run(
        [sys.executable, "-m", "numerai_autopilot", *args],
        cwd=cwd, env={**base, "COLUMNS": "200", **(env or {})},
        capture_output=True, text=True, timeout=240, check=False,
    )


def test_init_keeps_secrets_out_of_the_config_in_a_private_env_file(tmp_path: Path) -> None:
    done = autopilot("init", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    config, env_file = tmp_path / "autopilot.toml", tmp_path / ".env"
    text = config.read_text()
    assert literal_secrets(config) == {}
    server = tomllib.loads(text)["server"]
    assert not {"secret", "admin_token", "previous_secrets"} & set(server)
    assert '# api_url = "http://127.0.0.1:8700"' in text
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    values = read_env_file(env_file)
    secret, token = values["AUTOPILOT_SECRET"], values["AUTOPILOT_ADMIN_TOKEN"]
    assert check_secret(secret) and check_secret(token) and secret != token
    assert values.get("NUMERAI_PUBLIC_ID", "") == ""  # a line to fill, not a value
    assert secret not in done.stdout + done.stderr and token not in done.stdout + done.stderr
    assert "set -a; . ./.env; set +a" in done.stdout and "out of git and images" in done.stdout
    assert "next: rename [models.my_model] in autopilot.toml to your model's name" in done.stdout
    assert ".env" in (tmp_path / ".gitignore").read_text().splitlines()
    # What a build runs on the config it copies: nothing to refuse.
    checked = autopilot("deploy", "check-config", cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr

    # Every command reads the .env file; a variable set in the environment wins.
    config.write_text(text.replace('# model_id = "..."', f'model_id = "{MODEL_ID}"'))
    url = autopilot("webhook-url", "my_model", "--base-url", "https://x.run.app", cwd=tmp_path)
    assert url.returncode == 0, url.stderr
    assert url.stdout.strip().endswith(f"/pred/{MODEL_ID}/{webhook_token(secret, MODEL_ID)}")
    over = autopilot("webhook-url", "my_model", "--base-url", "https://x.run.app", cwd=tmp_path,
                     env={"AUTOPILOT_SECRET": OTHER})
    assert over.stdout.strip().endswith(webhook_token(OTHER, MODEL_ID))

    # The .env file is never overwritten without --force; with it, new secrets.
    config.unlink()
    shutil.rmtree(tmp_path / "predictors")
    again = autopilot("init", cwd=tmp_path)
    assert again.returncode == 2 and ".env exists; pass --force" in again.stderr
    forced = autopilot("init", "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert read_env_file(env_file)["AUTOPILOT_SECRET"] != secret
    assert (tmp_path / ".gitignore").read_text().splitlines().count(".env") == 1


@pytest.mark.parametrize(("where", "says"), [
    ("file", "server.secret: a placeholder, not a secret"),
    ("env", "environment variable AUTOPILOT_SECRET (for server.secret): 12 bytes, too short"),
    (".env", "environment variable AUTOPILOT_ADMIN_TOKEN (for server.admin_token): 11 bytes"),
])
def test_serve_refuses_a_weak_secret_before_starting(tmp_path: Path, where: str, says: str) -> None:
    config = tmp_path / "autopilot.toml"
    config.write_text(('[server]\nsecret = "CHANGE-ME"\n' if where == "file" else "")
                      + "[models.a]\npredictor = 'x.py:f'\n")
    if where == ".env":
        (tmp_path / ".env").write_text("AUTOPILOT_ADMIN_TOKEN=admin-token\n")
    env = {"AUTOPILOT_SECRET": "short-secret"} if where == "env" else {}
    done = autopilot("serve", "--port", str(free_port()), cwd=tmp_path, env=env)
    assert done.returncode == 2, done.stdout + done.stderr
    message = " ".join(done.stderr.split())
    assert says in message and MAKE_ONE in message, message
    assert "short-secret" not in message and "admin-token" not in message


def test_from_init_to_the_sandbox_doctor_asks_for_the_models_real_name(tmp_path: Path) -> None:
    assert autopilot("init", cwd=tmp_path).returncode == 0
    data_dir = tmp_path / "sandbox-data"  # the sandbox's own default data: made at its start
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOPILOT_", "NUMERAI_"))}
    sandbox = subprocess.Popen(
        [sys.executable, "-m", "numerai_autopilot", "sandbox", "--port", str(port),
         "--data-dir", str(data_dir), "--models", "alpha,beta"],
        cwd=tmp_path, env=base, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    try:
        exports = _export_lines(sandbox)
        env = {}
        for line in exports:  # as a shell would read them
            name, _, value = line.removeprefix("export ").partition("=")
            env[name] = shlex.split(value)[0]
        assert set(env) == {"NUMERAI_PUBLIC_ID", "NUMERAI_SECRET_KEY", "AUTOPILOT_NUMERAI_API_URL"}
        assert env["AUTOPILOT_NUMERAI_API_URL"] == f"http://127.0.0.1:{port}"
        done = autopilot("doctor", cwd=tmp_path, env=env)
        assert done.returncode == 1, done.stdout + done.stderr
        output = " ".join(done.stdout.split())
        assert "ok keys: valid; the account has 2 models" in output, output
        assert ("FAIL model my_model: 'my_model' is `autopilot init`'s example name; rename "
                "[models.my_model] in the config to your model's name on Numerai (this account "
                "has: alpha, beta)") in output
        assert "ok server.secret: set" in output  # from the .env file init wrote
        renamed = tmp_path / "autopilot.toml"
        renamed.write_text(renamed.read_text().replace("[models.my_model]", "[models.alpha]"))
        fixed = autopilot("doctor", cwd=tmp_path, env=env)
        assert "ok model alpha:" in " ".join(fixed.stdout.split()), fixed.stdout
    finally:
        os.killpg(sandbox.pid, signal.SIGTERM)
        sandbox.wait(30)


def _export_lines(process: subprocess.Popen[str]) -> list[str]:
    """The `export ...` lines of the sandbox's banner (it prints them, then serves)."""
    assert process.stdout is not None
    deadline, lines = time.monotonic() + 240, []
    for line in process.stdout:
        if line.strip().startswith("export "):
            lines.append(line.strip())
        if len(lines) == 3 or time.monotonic() > deadline:
            break
    assert len(lines) == 3, "the sandbox printed no export lines"
    return lines


@pytest.mark.slow
def test_the_demos_closing_hint_names_its_folder_and_the_readmes_command(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]  # a checkout: dev.py is here, as in the README
    workdir = tmp_path / "my-demo"
    done = autopilot("demo", "--workdir", str(workdir), cwd=root)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    hint = f"`python3 dev.py autopilot runs -c {workdir / 'autopilot.toml'}`"
    assert f"The demo's files are in {workdir}. Inspect the runs: {hint}" in done.stdout
    listed = autopilot("runs", "-c", str(workdir / "autopilot.toml"), cwd=tmp_path)
    assert listed.returncode == 0 and "submitted" in listed.stdout, listed.stderr
