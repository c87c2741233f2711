"""`autopilot deploy cloudrun` with the real `gcloud`, pointed at a fake of Google's APIs on
127.0.0.1 (fake_google.py): the exact service spec gcloud sends, the IAM calls, retries of
bindings IAM has not propagated, the check that the service answers without credentials, and
the deploy's refusals. Where gcloud is missing these tests skip, except under CI=true.

What this cannot cover: `--source` builds (gcloud uploads the folder and runs Cloud Build;
the fake stops at the build), and Google's own behaviour behind each API.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_google import Call, FakeGoogle
from ops_harness import ADMIN_TOKEN, WEBHOOK_SECRET, Project, write_project

from numerai_autopilot.config import webhook_url
from numerai_autopilot.sandbox.testing import RunningSandbox

P = "proj-1"
SA = f"autopilot-run@{P}.iam.gserviceaccount.com"
BUILD_SA = f"autopilot-build@{P}.iam.gserviceaccount.com"
IMAGE = f"europe-docker.pkg.dev/{P}/r/autopilot:1"
BASE = ("deploy", "cloudrun", "--project", P, "--region", "europe-west1")
SECRETS = {"NUMERAI_PUBLIC_ID": "autopilot-numerai-public-id",
           "NUMERAI_SECRET_KEY": "autopilot-numerai-secret-key",
           "AUTOPILOT_SECRET": "autopilot-webhook-secret",
           "AUTOPILOT_ADMIN_TOKEN": "autopilot-admin-token"}
KNATIVE = f"/apis/serving.knative.dev/v1/namespaces/{P}/services"


def real_gcloud() -> None:
    if shutil.which("gcloud") is None:
        reason = "the real gcloud is not installed (https://cloud.google.com/sdk/docs/install)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture
def google(tmp_path: Path) -> Iterator[FakeGoogle]:
    real_gcloud()
    with FakeGoogle(project=P).serve() as fake:
        yield fake
    assert fake.unexpected == [], "gcloud called APIs the fake does not stand in for"


@pytest.fixture
def project(tmp_path: Path, sandbox: RunningSandbox) -> Project:
    # Two workers of 2 GiB and the server need 4.5 GiB: deploys here ask for 6Gi.
    project = write_project(tmp_path / "project", sandbox, {"alpha": "good", "beta": "good"})
    (project.path / "Dockerfile").write_text("FROM python:3.11-slim\n")
    return project


def deployed_specs(calls: list[Call]) -> list[dict[str, Any]]:
    """Each service body gcloud sent to Cloud Run (create or replace), in order."""
    return [c.body for c in calls if c.api == "run" and c.path.startswith(KNATIVE)
            and c.method in ("POST", "PUT")]


def env_of(spec: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = spec["spec"]["template"]["spec"]["containers"][0]["env"]
    return result


def secret_env(names: dict[str, str]) -> list[dict[str, Any]]:
    return [{"name": env, "valueFrom": {"secretKeyRef": {"key": "latest", "name": name}}}
            for env, name in names.items()]


def bindings(fake: FakeGoogle, key: str) -> dict[str, list[str]]:
    return {b["role"]: b["members"] for b in fake.policies.get(key, {}).get("bindings", [])}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_setup_and_deploy_send_the_exact_service_and_iam_calls_then_register(
    project: Project, google: FakeGoogle, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    google.unpropagated = 1  # the first binding naming a new account: "does not exist"
    gcloud_env = google.env(tmp_path)
    # The server's secrets as `autopilot init` leaves them: in .env, not in the environment.
    (project.path / ".env").write_text(
        f"AUTOPILOT_SECRET={project.env.pop('AUTOPILOT_SECRET')}\n"
        f"AUTOPILOT_ADMIN_TOKEN={project.env.pop('AUTOPILOT_ADMIN_TOKEN')}\n")
    done = project.cli(*BASE, "--setup", "--image", IMAGE, "--memory", "6Gi", env=gcloud_env,
                       timeout=800)
    assert done.returncode == 0, done.stdout + done.stderr
    calls = google.take_calls()
    url = google.service_url("autopilot")

    # --setup: APIs (IAM's included), both accounts, the builder role, secrets, the bucket.
    assert {"run.googleapis.com", "iam.googleapis.com", "secretmanager.googleapis.com",
            "storage.googleapis.com", "cloudbuild.googleapis.com",
            "artifactregistry.googleapis.com"} <= google.enabled
    assert google.service_accounts == {SA, BUILD_SA}
    assert bindings(google, f"projects/{P}") == {"roles/run.builder": [f"serviceAccount:{BUILD_SA}"]}
    values = {"NUMERAI_PUBLIC_ID": sandbox.public_id, "NUMERAI_SECRET_KEY": sandbox.secret_key,
              "AUTOPILOT_SECRET": WEBHOOK_SECRET, "AUTOPILOT_ADMIN_TOKEN": ADMIN_TOKEN}
    for env, name in SECRETS.items():
        assert google.secrets[name] == [values[env].encode()]
        assert bindings(google, f"secrets/{name}") == {
            "roles/secretmanager.secretAccessor": [f"serviceAccount:{SA}"]}
    bucket = google.buckets[f"{P}-autopilot-ledger"]
    assert bucket["location"] == "europe-west1"
    assert bucket["iamConfiguration"] == {"publicAccessPrevention": "enforced",
                                          "uniformBucketLevelAccess": {"enabled": True}}
    # The service's account may use that bucket's objects, and nothing else of Storage.
    assert bindings(google, f"buckets/{P}-autopilot-ledger") == {
        "roles/storage.objectAdmin": [f"serviceAccount:{SA}"]}
    refused = [c for c in calls if c.path.endswith((":setIamPolicy", "/iam"))
               and c.method in ("POST", "PUT")]
    assert len(refused) == 1 + 1 + 4 + 1 + 1, [c.line for c in refused]  # +1: the retry
    assert "IAM has not propagated the new service account yet" in done.stdout

    # The service, exactly as gcloud sent it.
    first, update = deployed_specs(calls)
    template = first["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    assert {k: v for k, v in annotations.items() if "client-" not in k} == {
        "autoscaling.knative.dev/maxScale": "1",
        "run.googleapis.com/cpu-throttling": "True",  # request-based billing
        "run.googleapis.com/execution-environment": "gen2",
        "run.googleapis.com/startup-cpu-boost": "True",
    }
    assert template["spec"] == {
        "containers": [{
            "args": ["litestream", "serve", "--host", "0.0.0.0", "--log-format", "json"],
            "env": [
                {"name": "GOOGLE_CLOUD_PROJECT", "value": P},
                {"name": "AUTOPILOT_CONFIG", "value": "/app/autopilot.toml"},
                {"name": "AUTOPILOT_LEDGER_REPLICA", "value": f"gs://{P}-autopilot-ledger/ledger"},
                *secret_env(SECRETS),
            ],
            "image": IMAGE,
            "name": "",
            "resources": {"limits": {"cpu": "2", "memory": "6Gi"}, "requests": {}},
        }],
        "nodeSelector": {},
        "serviceAccountName": SA,
        "timeoutSeconds": 3600,
    }
    # Then the server learns its own URL (server.public_url), in a revision of its own.
    assert {"name": "AUTOPILOT_SERVER_PUBLIC_URL", "value": url} in env_of(update)
    assert bindings(google, "run/autopilot") == {"roles/run.invoker": ["allUsers"]}
    # Nothing secret in any request but the secrets' own payloads.
    for call in calls:
        text = json.dumps(call.body) + call.path + json.dumps(call.query)
        assert not any(secret in text for secret in project.secrets()), call.line
    added = [c.body["payload"]["data"] for c in calls if c.path.endswith(":addVersion")]
    assert sorted(base64.b64decode(d).decode() for d in added) == sorted(values.values())

    assert "ok: /healthz answered 200" in done.stdout
    assert f"service URL: {url}" in done.stdout
    hooks = {m["id"]: m["submissionWebhook"] for m in sandbox.graphql(
        "query { account { models { id submissionWebhook } } }")["data"]["account"]["models"]}
    for name in ("alpha", "beta"):
        mid = sandbox.models[name]
        assert hooks[mid] == webhook_url(url, mid, WEBHOOK_SECRET)

    # Again: --setup only looks, and the service's URL goes into the new revision at once.
    again = project.cli(*BASE, "--setup", "--image", IMAGE, "--memory", "6Gi", "--no-register",
                        env=gcloud_env, timeout=800)
    assert again.returncode == 0, again.stdout + again.stderr
    calls = google.take_calls()
    created = [c.line for c in calls if c.method == "POST" and c.path.endswith(
        ("/serviceAccounts", "/secrets", "/b", ":batchEnable", ":addVersion"))]
    assert created == []
    [spec] = deployed_specs(calls)
    assert {"name": "AUTOPILOT_SERVER_PUBLIC_URL", "value": url} in env_of(spec)
    project.assert_no_secret_printed()


def test_an_organisation_policy_refusing_all_users_stops_the_deploy_before_registering(
    project: Project, google: FakeGoogle, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    google.refuse_all_users = True
    done = project.cli(*BASE, "--image", IMAGE, "--memory", "6Gi", env=google.env(tmp_path))
    assert done.returncode == 1, done.stdout + done.stderr
    # gcloud said so and exited 0; the deploy read it, and /healthz without credentials: 403.
    assert "Setting IAM policy failed" in done.stderr
    assert "answered HTTP 403" in done.stderr and "organisation policy" in done.stderr
    assert "no webhook was registered" in done.stderr and "--no-invoker-iam-check" in done.stderr
    assert all(m["submissionWebhook"] is None for m in sandbox.graphql(
        "query { account { models { submissionWebhook } } }")["data"]["account"]["models"])
    project.assert_no_secret_printed()


def test_cloudsql_ledger_spec_several_instances_and_the_password_as_a_secret(
    project: Project, google: FakeGoogle, tmp_path: Path
) -> None:
    # As --setup leaves it: without the Cloud SQL APIs, gcloud asks to enable them (and,
    # unable to ask, aborts).
    google.enabled |= {"run.googleapis.com", "sql-component.googleapis.com",
                       "sqladmin.googleapis.com"}
    done = project.cli(*BASE, "--image", IMAGE, "--memory", "6Gi", "--cloudsql", "ledger-db",
                       "--max-instances", "3", "--no-register", "--previous-secret-version", "3",
                       env=google.env(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    spec, _update = deployed_specs(google.take_calls())
    template = spec["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    assert annotations["run.googleapis.com/cloudsql-instances"] == f"{P}:europe-west1:ledger-db"
    assert annotations["autoscaling.knative.dev/maxScale"] == "3"
    [container] = template["spec"]["containers"]
    assert container["args"] == ["serve", "--host", "0.0.0.0", "--log-format", "json"]
    assert container["env"] == [
        {"name": "GOOGLE_CLOUD_PROJECT", "value": P},
        {"name": "AUTOPILOT_CONFIG", "value": "/app/autopilot.toml"},
        {"name": "AUTOPILOT_LEDGER_URL", "value": "postgresql+psycopg://autopilot@/autopilot"
                                                  f"?host=/cloudsql/{P}:europe-west1:ledger-db"},
        *secret_env({**SECRETS, "PGPASSWORD": "autopilot-ledger-password"}),
        # a rotation's old webhook secret: its version 3 (--previous-secret-version)
        {"name": "AUTOPILOT_PREVIOUS_SECRETS",
         "valueFrom": {"secretKeyRef": {"key": "3", "name": "autopilot-webhook-secret"}}},
    ]


def test_deploy_refuses_workers_that_do_not_fit_the_instance(project: Project) -> None:
    done = project.cli(*BASE, "--dry-run")  # 2 workers x 2 GiB + 0.5 GiB > 4Gi
    assert done.returncode == 2
    message = " ".join(done.stderr.split())
    assert "executor: 2 workers x 2 GiB + 512 MiB for the server = 4.5 GiB" in message
    assert "more than the instance's --memory 4Gi (4 GiB)" in message
    assert 'set executor.memory_limit = "1.75GiB"' in message and "--memory 5Gi" in message


def test_dry_run_prints_every_command_and_runs_none(project: Project, tmp_path: Path,
                                                    sandbox: RunningSandbox) -> None:
    done = project.cli(*BASE, "--setup", "--dry-run", "--memory", "6Gi",
                       env={"PATH": str(tmp_path / "no-gcloud-here")})
    assert done.returncode == 0, done.stdout + done.stderr
    printed = [line[2:] for line in done.stdout.splitlines() if line.startswith("$ ")]
    assert printed[0] == f"gcloud services list --enabled --project {P} --format 'value(config.name)'"
    expected = [
        f"gcloud iam service-accounts create autopilot-build --project {P}",
        (f"gcloud projects add-iam-policy-binding {P} --member serviceAccount:{BUILD_SA} "
        "--role roles/run.builder --condition=None"),
        f"gcloud secrets versions add autopilot-numerai-secret-key --project {P} --data-file=-",
        (f"gcloud storage buckets create gs://{P}-autopilot-ledger --project {P} "
        "--location europe-west1 --uniform-bucket-level-access --public-access-prevention"),
        (f"gcloud storage buckets add-iam-policy-binding gs://{P}-autopilot-ledger --project {P} "
        f"--member serviceAccount:{SA} --role roles/storage.objectAdmin"),
    ]
    for start in expected:
        assert any(line.startswith(start) for line in printed), start
    [deploy] = [line for line in printed if line.startswith("gcloud run deploy")]
    for part in (f"--source {project.path}", ("--build-service-account "
                 f"projects/{P}/serviceAccounts/{BUILD_SA}"), "--execution-environment gen2",
                 "--cpu-throttling", "--min-instances 0", "--max-instances 1",
                 "--args litestream,serve,--host,0.0.0.0,--log-format,json"):
        assert part in deploy, part
    assert all(m["submissionWebhook"] is None for m in sandbox.graphql(
        "query { account { models { submissionWebhook } } }")["data"]["account"]["models"])
    project.assert_no_secret_printed()


def test_deploy_explains_missing_gcloud_dockerfile_and_sqlite_with_many_instances(
    project: Project, tmp_path: Path
) -> None:
    no_gcloud = project.cli(*BASE, "--memory", "6Gi", "--no-register",
                            env={"PATH": str(tmp_path / "empty")})
    assert no_gcloud.returncode == 1 and "gcloud not found on PATH" in no_gcloud.stderr
    many = project.cli(*BASE, "--memory", "6Gi", "--max-instances", "3")
    assert many.returncode == 2 and "--cloudsql" in many.stderr
    bad = project.cli(*BASE, "--memory", "6Gi", "--cloudsql", "a:b")
    assert bad.returncode == 2 and "PROJECT:REGION:INSTANCE" in bad.stderr
    (project.path / "Dockerfile").unlink()
    no_dockerfile = project.cli(*BASE, "--memory", "6Gi")
    assert no_dockerfile.returncode == 2 and "no Dockerfile" in no_dockerfile.stderr
