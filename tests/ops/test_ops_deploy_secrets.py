"""No secret in what a deploy builds or uploads: `autopilot deploy cloudrun` refuses a config
holding a secret (naming the key and where it belongs) and a source deploy that would upload
the `.env` file; `deploy check-config` (what the Dockerfile runs) refuses the same configs;
a rotation's old webhook secret reaches the service from Secret Manager."""

from __future__ import annotations

from pathlib import Path

import pytest
from ops_harness import WEBHOOK_SECRET, Project, write_project

from numerai_autopilot.sandbox.testing import RunningSandbox

P = "proj-1"
BASE = ("deploy", "cloudrun", "--project", P, "--region", "europe-west1", "--memory", "6Gi")


@pytest.fixture
def project(tmp_path: Path, sandbox: RunningSandbox) -> Project:
    project = write_project(tmp_path / "project", sandbox, {"alpha": "good"})
    (project.path / "Dockerfile").write_text("FROM python:3.11-slim\n")
    return project


def printed_deploy(stdout: str) -> str:
    [line] = [line for line in stdout.splitlines() if line.startswith("$ gcloud run deploy")]
    return line


def test_a_config_holding_a_secret_is_refused_naming_each_key(project: Project) -> None:
    clean = project.config.read_text()
    project.config.write_text(
        '[server]\nsecret = "sm://projects/p/secrets/webhook-secret"\n'
        f'previous_secrets = ["{WEBHOOK_SECRET}"]\nadmin_token = "{project.env["AUTOPILOT_ADMIN_TOKEN"]}"\n'
        + clean.replace('timeout = 10\n', f'timeout = 10\nsecret_key = "{project.sandbox.secret_key}"\n'))
    for command in (BASE + ("--dry-run",), ("deploy", "check-config")):
        done = project.cli(*command)
        assert done.returncode == 2, done.stdout + done.stderr
        message = " ".join(done.stderr.split())
        assert "a secret in this file would be copied into the image" in message, message
        assert ("numerai.secret_key: set NUMERAI_SECRET_KEY in the environment or the .env file "
                "beside the config (--setup stores it in Secret Manager)") in message
        assert "server.admin_token: set AUTOPILOT_ADMIN_TOKEN" in message
        assert "server.previous_secrets: during a rotation, deploy with --previous-secret-version N" in message
        assert "server.secret" not in message  # a Secret Manager reference is no secret
        assert "$ gcloud" not in done.stdout  # nothing ran
    project.config.write_text(clean)
    assert project.cli("deploy", "check-config").returncode == 0
    project.assert_no_secret_printed()


def test_a_source_deploy_never_uploads_the_env_file(project: Project) -> None:
    (project.path / ".env").write_text(f"AUTOPILOT_SECRET={WEBHOOK_SECRET}\n")
    refused = project.cli(*BASE, "--no-register", env={"PATH": "/nonexistent"})
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "would upload it to Cloud Build; add a line `.env` to" in " ".join(refused.stderr.split())
    (project.path / ".gitignore").write_text("ledger.db\n.env\n")
    # gcloud skips what .gitignore names: the deploy goes on (and stops at the missing gcloud).
    passed = project.cli(*BASE, "--no-register", env={"PATH": "/nonexistent"})
    assert passed.returncode == 1 and "gcloud not found on PATH" in passed.stderr
    # A .gcloudignore that does not name it (nor include .gitignore) uploads it again.
    (project.path / ".gcloudignore").write_text(".git\n")
    again = project.cli(*BASE, "--no-register", env={"PATH": "/nonexistent"})
    assert again.returncode == 2 and ".gcloudignore" in again.stderr
    # A built image uploads nothing.
    image = project.cli(*BASE, "--image", "r/autopilot:1", "--dry-run")
    assert image.returncode == 0, image.stdout + image.stderr
    project.assert_no_secret_printed()


def test_the_old_webhook_secret_of_a_rotation_comes_from_its_version(project: Project) -> None:
    done = project.cli(*BASE, "--dry-run", "--previous-secret-version", "3")
    assert done.returncode == 0, done.stdout + done.stderr
    deploy = printed_deploy(done.stdout)
    assert ("AUTOPILOT_SECRET=autopilot-webhook-secret:latest,AUTOPILOT_ADMIN_TOKEN="
            "autopilot-admin-token:latest,AUTOPILOT_PREVIOUS_SECRETS=autopilot-webhook-secret:3"
            ) in deploy
    bad = project.cli(*BASE, "--dry-run", "--previous-secret-version", "latest-1")
    assert bad.returncode == 2 and "write the version's number" in bad.stderr
    plain = printed_deploy(project.cli(*BASE, "--dry-run").stdout)
    assert "AUTOPILOT_PREVIOUS_SECRETS" not in plain


def test_alert_urls_are_refused_in_the_file_and_travel_as_a_secret(project: Project) -> None:
    clean = project.config.read_text()
    project.config.write_text(clean + '\n[alerts]\nurls = ["slack://TokA/TokB/TokC"]\n')
    refused = project.cli(*BASE, "--dry-run")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "alerts.urls: set AUTOPILOT_ALERTS_URLS in the environment" in " ".join(
        refused.stderr.split())
    assert "TokA" not in refused.stdout + refused.stderr
    project.config.write_text(clean)
    urls = "slack://TokA/TokB/TokC mailto://user:pw@example.com"
    done = project.cli(*BASE, "--dry-run", "--setup", env={"AUTOPILOT_ALERTS_URLS": urls})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "$ gcloud secrets create autopilot-alert-urls" in done.stdout
    assert "the value of AUTOPILOT_ALERTS_URLS, on stdin" in done.stdout
    assert "AUTOPILOT_ALERTS_URLS=autopilot-alert-urls:latest" in printed_deploy(done.stdout)
    assert "TokA" not in done.stdout + done.stderr and "pw@" not in done.stdout + done.stderr
    without = printed_deploy(project.cli(*BASE, "--dry-run").stdout)
    assert "AUTOPILOT_ALERTS_URLS" not in without
