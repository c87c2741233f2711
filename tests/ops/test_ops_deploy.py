"""`autopilot deploy cloudrun` with `gcloud` replaced by a recording stand-in on PATH:
the exact commands, --setup idempotent, --dry-run runs nothing, no secret on any command line."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
from fake_gcloud import SERVICE_URL
from ops_harness import ADMIN_TOKEN, WEBHOOK_SECRET, Project, write_project

from numerai_autopilot.config import webhook_url
from numerai_autopilot.sandbox.testing import RunningSandbox

SA = "autopilot-run@proj-1.iam.gserviceaccount.com"
SECRETS = ("numerai-public-id", "numerai-secret-key", "webhook-secret", "admin-token")
ACCESSOR = "roles/secretmanager.secretAccessor"


class Gcloud:
    def __init__(self, folder: Path) -> None:
        self.record = folder / "calls.jsonl"
        self.state = folder / "state.json"
        bin_dir = folder / "bin"
        bin_dir.mkdir()
        script = bin_dir / "gcloud"
        script.write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(Path(__file__).parent)!r})\n"
                          "from fake_gcloud import main\nsys.exit(main(sys.argv[1:]))\n")
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
        self.env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
                    "GCLOUD_RECORD": str(self.record), "GCLOUD_STATE": str(self.state)}

    def calls(self) -> list[dict[str, Any]]:
        if not self.record.exists():
            return []
        calls = [json.loads(line) for line in self.record.read_text().splitlines()]
        self.record.unlink()
        return calls


@pytest.fixture
def gcloud(tmp_path: Path) -> Gcloud:
    return Gcloud(tmp_path)


@pytest.fixture
def project(tmp_path: Path, sandbox: RunningSandbox) -> Project:
    project = write_project(tmp_path / "project", sandbox, {"alpha": "good", "beta": "good"})
    (project.path / "Dockerfile").write_text("FROM python:3.11-slim\n")
    return project


def deploy_argv(origin: list[str]) -> list[str]:
    secrets = ",".join(f"{env}=autopilot-{name}:latest" for env, name in zip(
        ("NUMERAI_PUBLIC_ID", "NUMERAI_SECRET_KEY", "AUTOPILOT_SECRET", "AUTOPILOT_ADMIN_TOKEN"),
        SECRETS, strict=True))
    return ["run", "deploy", "autopilot", "--project", "proj-1", "--region", "europe-west1",
            *origin, "--service-account", SA, "--memory", "4Gi", "--cpu", "2",
            "--min-instances", "0", "--max-instances", "1", "--no-cpu-throttling",
            "--timeout", "3600", "--allow-unauthenticated", "--set-secrets", secrets,
            "--set-env-vars", "GOOGLE_CLOUD_PROJECT=proj-1,AUTOPILOT_CONFIG=/app/autopilot.toml",
            "--args", "serve,--host,0.0.0.0,--log-format,json", "--quiet"]


DESCRIBE_URL = ["run", "services", "describe", "autopilot", "--project", "proj-1", "--region",
                "europe-west1", "--format", "value(status.url)"]
BASE = ("deploy", "cloudrun", "--project", "proj-1", "--region", "europe-west1")


def test_setup_then_deploy_runs_the_exact_commands_and_registers_the_webhooks(
    project: Project, gcloud: Gcloud, sandbox: RunningSandbox
) -> None:
    done = project.cli(*BASE, "--setup", env=gcloud.env)
    assert done.returncode == 0, done.stdout + done.stderr
    calls = gcloud.calls()
    argvs = [c["argv"] for c in calls]
    p = ["--project", "proj-1"]
    expected = [
        ["services", "list", "--enabled", *p, "--format", "value(config.name)"],
        ["services", "enable", "run.googleapis.com", "cloudbuild.googleapis.com",
         "artifactregistry.googleapis.com", "secretmanager.googleapis.com", *p],
        ["iam", "service-accounts", "describe", SA, *p],
        ["iam", "service-accounts", "create", "autopilot-run", *p,
         "--display-name", "numerai-autopilot (autopilot)"],
    ]
    for name in SECRETS:
        secret = f"autopilot-{name}"
        expected += [
            ["secrets", "describe", secret, *p],
            ["secrets", "create", secret, *p, "--replication-policy", "automatic"],
            ["secrets", "versions", "add", secret, *p, "--data-file=-"],
            ["secrets", "get-iam-policy", secret, *p, "--format", "json"],
            ["secrets", "add-iam-policy-binding", secret, *p, "--member",
             f"serviceAccount:{SA}", "--role", ACCESSOR],
        ]
    expected += [deploy_argv(["--source", str(project.path)]), DESCRIBE_URL]
    assert argvs == expected
    # Secret values went through stdin only, each to its own secret.
    values = {c["argv"][3]: c["stdin"] for c in calls if c["argv"][:3] == ["secrets", "versions", "add"]}
    assert values == {"autopilot-numerai-public-id": sandbox.public_id,
                      "autopilot-numerai-secret-key": sandbox.secret_key,
                      "autopilot-webhook-secret": WEBHOOK_SECRET,
                      "autopilot-admin-token": ADMIN_TOKEN}
    for call in calls:
        for secret in project.secrets():
            assert not any(secret in arg for arg in call["argv"])
    # The URL is printed and every model's webhook registered there.
    assert f"service URL: {SERVICE_URL}" in done.stdout
    body = sandbox.graphql("query { account { models { id submissionWebhook } } }")
    hooks = {m["id"]: m["submissionWebhook"] for m in body["data"]["account"]["models"]}
    for name in ("alpha", "beta"):
        mid = sandbox.models[name]
        assert hooks[mid] == webhook_url(SERVICE_URL, mid, WEBHOOK_SECRET)

    # A second --setup finds everything: it only looks, then deploys again.
    again = project.cli(*BASE, "--setup", env=gcloud.env)
    assert again.returncode == 0, again.stdout + again.stderr
    verbs = [tuple(c["argv"][:3]) for c in gcloud.calls()]
    assert not [v for v in verbs if set(v) & {"create", "enable", "add", "add-iam-policy-binding"}]
    assert ("run", "deploy", "autopilot") in verbs
    project.assert_no_secret_printed()


def test_deploy_from_an_image_with_sizes(project: Project, gcloud: Gcloud) -> None:
    done = project.cli(*BASE, "--image", "europe-docker.pkg.dev/proj-1/r/autopilot:1",
                       "--memory", "8Gi", "--cpu", "4", "--min-instances", "1", "--no-register",
                       env=gcloud.env)
    assert done.returncode == 0, done.stdout + done.stderr
    argvs = [c["argv"] for c in gcloud.calls()]
    expected = deploy_argv(["--image", "europe-docker.pkg.dev/proj-1/r/autopilot:1"])
    for flag, value in (("--memory", "8Gi"), ("--cpu", "4"), ("--min-instances", "1")):
        expected[expected.index(flag) + 1] = value
    assert argvs == [expected, DESCRIBE_URL]
    project.assert_no_secret_printed()


def test_dry_run_prints_every_command_and_runs_none(project: Project, gcloud: Gcloud,
                                                    sandbox: RunningSandbox) -> None:
    done = project.cli(*BASE, "--setup", "--dry-run", env=gcloud.env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert gcloud.calls() == []
    printed = [line[2:] for line in done.stdout.splitlines() if line.startswith("$ ")]
    assert printed[0] == "gcloud services list --enabled --project proj-1 --format 'value(config.name)'"
    assert any(line.startswith("gcloud secrets versions add autopilot-numerai-secret-key "
                               "--project proj-1 --data-file=-") for line in printed)
    assert any(line.startswith("gcloud run deploy autopilot --project proj-1") for line in printed)
    assert "--no-cpu-throttling" in done.stdout and "autopilot register --base-url" in done.stdout
    assert all(m["submissionWebhook"] is None for m in sandbox.graphql(
        "query { account { models { submissionWebhook } } }")["data"]["account"]["models"])
    project.assert_no_secret_printed()


def test_deploy_explains_missing_gcloud_dockerfile_and_sqlite_with_many_instances(
    project: Project, gcloud: Gcloud, tmp_path: Path
) -> None:
    no_gcloud = project.cli(*BASE, "--no-register", env={"PATH": str(tmp_path / "empty")})
    assert no_gcloud.returncode == 1 and "gcloud not found on PATH" in no_gcloud.stderr
    many = project.cli(*BASE, "--max-instances", "3", env=gcloud.env)
    assert many.returncode == 2 and "PostgreSQL" in many.stderr
    (project.path / "Dockerfile").unlink()
    no_dockerfile = project.cli(*BASE, env=gcloud.env)
    assert no_dockerfile.returncode == 2 and "no Dockerfile" in no_dockerfile.stderr
    assert gcloud.calls() == []
