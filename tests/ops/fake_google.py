"""A fake of the Google Cloud APIs that `autopilot deploy cloudrun` reaches through the real
`gcloud`, on 127.0.0.1.

gcloud sends each API to `CLOUDSDK_API_ENDPOINT_OVERRIDES_<API>`. An override must be a host
name (gcloud's validator refuses user info), and for Cloud Run gcloud derives the regional
endpoint by prefixing the host with the region (`europe-west1-run.googleapis.test`), which no
resolver knows. So every override names an unresolvable `*.googleapis.test` host over plain
http, and gcloud's own proxy setting (`CLOUDSDK_PROXY_*`) sends every request to this server,
which reads the API from the absolute URL of the request, as a forward proxy does. A request
for any API that is not overridden arrives as `CONNECT host:443` and is recorded in
`unexpected` (and refused), so a test sees it.

State is kept as Google keeps it (enabled services, service accounts, secrets and their IAM
policies, buckets and theirs, the project's IAM policy, Cloud Run services), so `describe`
after `create` finds the thing. Faults:
- `refuse_all_users`: a Cloud Run setIamPolicy naming `allUsers` fails with 400
  FAILED_PRECONDITION, as under an organisation policy (domain restricted sharing) refusing
  it; gcloud then prints "Setting IAM policy failed" and still exits 0.
- `unpropagated`: that many setIamPolicy calls naming a service account created by this
  fake fail with 400 "does not exist", as IAM answers before a new account has propagated.

Each Cloud Run service's URL is `http://127.0.0.1:PORT/run/NAME`, served here too: its
`/healthz` answers 200 without credentials only while `allUsers` holds `roles/run.invoker`
on it (else 403, as Cloud Run answers an unauthenticated request).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

APIS = ("run", "iam", "serviceusage", "secretmanager", "storage", "cloudresourcemanager",
        "cloudbuild", "artifactregistry", "sqladmin")


@dataclass
class Call:
    """One request gcloud made: the API (first label of the host), method, path, query, body."""

    api: str
    method: str
    host: str
    path: str
    query: dict[str, list[str]]
    body: Any

    @property
    def line(self) -> str:
        """`METHOD host/path`, for assertions that read like a log."""
        return f"{self.method} {self.host}{self.path}"


@dataclass
class FakeGoogle:
    """The fake's state and faults; `serve()` runs it; `env(folder)` points gcloud at it."""

    project: str = "proj-1"
    project_number: str = "123456789012"
    refuse_all_users: bool = False
    unpropagated: int = 0
    enabled: set[str] = field(default_factory=set)
    service_accounts: set[str] = field(default_factory=set)
    secrets: dict[str, list[bytes]] = field(default_factory=dict)
    buckets: dict[str, dict[str, Any]] = field(default_factory=dict)
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    revisions: list[dict[str, Any]] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    port: int = 0
    _fresh: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def serve(self) -> Iterator[FakeGoogle]:
        """Listen on a free port of 127.0.0.1 until the block ends."""
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
            thread.join(5)

    def env(self, folder: Path) -> dict[str, str]:
        """The environment that points the real gcloud here: its own config folder, a fake
        access token, the project, no prompts, no update checks, every API overridden."""
        token = folder / "access-token"
        token.write_text("fake-access-token\n")
        env = {
            "CLOUDSDK_CONFIG": str(folder / "gcloud-config"),
            "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE": str(token),
            "CLOUDSDK_CORE_PROJECT": self.project,
            "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
            "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "1",
            "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "1",
            "CLOUDSDK_CORE_CHECK_GCE_METADATA": "false",
            "CLOUDSDK_PROXY_TYPE": "http",
            "CLOUDSDK_PROXY_ADDRESS": "127.0.0.1",
            "CLOUDSDK_PROXY_PORT": str(self.port),
        }
        for api in APIS:
            env[f"CLOUDSDK_API_ENDPOINT_OVERRIDES_{api.upper()}"] = f"http://{api}.googleapis.test/"
        # gcloud storage calls the JSON API under /storage/v1/ of its override.
        env["CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE"] = "http://storage.googleapis.test/storage/v1/"
        return env

    def service_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/run/{name}"

    def take_calls(self) -> list[Call]:
        """The calls since the last take, oldest first."""
        with self._lock:
            calls, self.calls = self.calls, []
        return calls

    # --- the APIs -----------------------------------------------------------------------

    def answer(self, call: Call) -> tuple[int, Any]:
        """(status, JSON body) for one call; 404 in Google's error shape for anything unknown."""
        handler = getattr(self, f"_{call.api}", None)
        if handler is not None:
            found = handler(call)
            if found is not None:
                return found
        return _error(404, "NOT_FOUND", f"fake google: nothing at {call.method} {call.path}")

    def _serviceusage(self, c: Call) -> tuple[int, Any] | None:
        base = f"/v1/projects/{self.project}/services"
        if c.method == "GET" and c.path == base:
            return 200, {"services": [
                {"name": f"projects/{self.project_number}/services/{api}", "config": {"name": api},
                 "state": "ENABLED"} for api in sorted(self.enabled)]}
        if c.method == "GET" and c.path.startswith(base + "/"):
            api = c.path.removeprefix(base + "/")
            state = "ENABLED" if api in self.enabled else "DISABLED"
            return 200, {"name": f"projects/{self.project_number}/services/{api}",
                         "config": {"name": api}, "state": state}
        if c.method == "POST" and c.path == base + ":batchEnable":
            self.enabled.update(c.body.get("serviceIds", []))
            return 200, {"name": "operations/batch-enable", "done": True,
                         "response": {"@type": "type.googleapis.com/google.api.serviceusage.v1."
                                      "BatchEnableServicesResponse", "services": []}}
        return None

    def _iam(self, c: Call) -> tuple[int, Any] | None:
        base = f"/v1/projects/{self.project}/serviceAccounts"
        if c.method == "POST" and c.path == base:
            email = f"{c.body['accountId']}@{self.project}.iam.gserviceaccount.com"
            self.service_accounts.add(email)
            self._fresh.add(email)
            return 200, _account(self.project, email, c.body.get("serviceAccount", {}))
        anywhere = "/v1/projects/-/serviceAccounts/"
        if c.method == "GET" and c.path.startswith((base + "/", anywhere)):
            email = unquote(c.path.rsplit("/", 1)[-1])
            if email in self.service_accounts:
                return 200, _account(self.project, email, {})
            return _error(404, "NOT_FOUND", f"Unknown service account {email}")
        return None

    def _cloudresourcemanager(self, c: Call) -> tuple[int, Any] | None:
        resource = f"/v1/projects/{self.project}"
        if c.path == resource + ":getIamPolicy":
            return 200, self._policy(f"projects/{self.project}")
        if c.path == resource + ":setIamPolicy":
            return self._set_policy(f"projects/{self.project}", c.body["policy"])
        return None

    def _secretmanager(self, c: Call) -> tuple[int, Any] | None:
        base = f"/v1/projects/{self.project}/secrets"
        if c.method == "POST" and c.path == base:
            name = c.query["secretId"][0]
            self.secrets[name] = []
            return 200, self._secret(name)
        if not c.path.startswith(base + "/"):
            return None
        rest = c.path.removeprefix(base + "/")
        name, _, verb = rest.partition(":")
        if name not in self.secrets:
            return _error(404, "NOT_FOUND", f"Secret [projects/{self.project_number}/secrets/"
                                            f"{name}] not found or has no versions.")
        if c.method == "GET" and not verb:
            return 200, self._secret(name)
        if verb == "addVersion":
            import base64

            self.secrets[name].append(base64.b64decode(c.body["payload"]["data"]))
            number = len(self.secrets[name])
            return 200, {"name": f"projects/{self.project_number}/secrets/{name}/versions/{number}",
                         "state": "ENABLED", "clientSpecifiedPayloadChecksum": True}
        if verb == "getIamPolicy":
            return 200, self._policy(f"secrets/{name}")
        if verb == "setIamPolicy":
            return self._set_policy(f"secrets/{name}", c.body["policy"])
        return None

    def _storage(self, c: Call) -> tuple[int, Any] | None:
        base = "/storage/v1/b"
        if c.method == "POST" and c.path == base:
            name = c.body["name"]
            if name in self.buckets:
                return _error(409, "CONFLICT", "Your previous request to create the named "
                                               "bucket succeeded and you already own it.")
            self.buckets[name] = {**c.body, "kind": "storage#bucket", "id": name,
                                  "projectNumber": self.project_number}
            return 200, self.buckets[name]
        if not c.path.startswith(base + "/"):
            return None
        name, _, rest = c.path.removeprefix(base + "/").partition("/")
        if name not in self.buckets:
            return _error(404, "NOT_FOUND", "The specified bucket does not exist.")
        if c.method == "GET" and not rest:
            return 200, self.buckets[name]
        if rest == "iam" and c.method == "GET":
            return 200, {"kind": "storage#policy", **self._policy(f"buckets/{name}")}
        if rest == "iam" and c.method == "PUT":
            return self._set_policy(f"buckets/{name}", c.body)
        return None

    def _run(self, c: Call) -> tuple[int, Any] | None:
        knative = f"/apis/serving.knative.dev/v1/namespaces/{self.project}/services"
        if c.method == "GET" and c.path.endswith(f"/namespaces/{self.project}/revisions"):
            # `services update` finds the revision it made by the template's nonce label.
            wanted = c.query.get("labelSelector", [""])[0].split("=")[-1].strip()
            return 200, {"apiVersion": "serving.knative.dev/v1", "kind": "RevisionList",
                         "items": [r for r in self.revisions if r["metadata"]["labels"]
                                   .get("client.knative.dev/nonce") == wanted]}
        if c.path == knative and c.method == "POST":
            return 200, self._deployed(c.body)
        if c.path.startswith(knative + "/"):
            name = c.path.removeprefix(knative + "/")
            if c.method == "PUT":
                return 200, self._deployed(c.body)
            if c.method == "GET":
                if name not in self.services:
                    return _error(404, "NOT_FOUND", f"Resource '{name}' of kind 'SERVICE' in "
                                                    f"region 'europe-west1' in project "
                                                    f"'{self.project}' does not exist.")
                return 200, self.services[name]
        prefix = f"/v1/projects/{self.project}/locations/"
        if c.path.startswith(prefix) and ":" in c.path:
            resource, _, verb = c.path.removeprefix(prefix).partition(":")
            name = resource.split("/")[-1]
            if verb == "testIamPermissions":
                return 200, {"permissions": c.body.get("permissions", [])}
            if verb == "getIamPolicy":
                return 200, self._policy(f"run/{name}")
            if verb == "setIamPolicy":
                policy = c.body["policy"]
                if self.refuse_all_users and any(
                    "allUsers" in b.get("members", []) for b in policy.get("bindings", [])
                ):
                    return _error(400, "FAILED_PRECONDITION", "One or more users named in the "
                                  "policy do not belong to a permitted customer.")
                return self._set_policy(f"run/{name}", policy)
        return None

    # --- helpers ------------------------------------------------------------------------

    def _policy(self, key: str) -> dict[str, Any]:
        return self.policies.setdefault(key, {"version": 1, "etag": "BwYAAAAAAAA=",
                                              "bindings": []})

    def _set_policy(self, key: str, policy: dict[str, Any]) -> tuple[int, Any]:
        members = {m for b in policy.get("bindings", []) for m in b.get("members", [])}
        named = {m.removeprefix("serviceAccount:") for m in members}
        if self.unpropagated > 0 and named & self._fresh:
            self.unpropagated -= 1
            email = min(named & self._fresh)
            return _error(400, "INVALID_ARGUMENT", f"Service account {email} does not exist.")
        stored = {"version": policy.get("version", 1), "etag": "BwYAAAAAAAE=",
                  "bindings": policy.get("bindings", [])}
        self.policies[key] = stored
        return 200, stored

    def _secret(self, name: str) -> dict[str, Any]:
        return {"name": f"projects/{self.project_number}/secrets/{name}",
                "replication": {"automatic": {}}, "createTime": "2026-01-01T00:00:00Z"}

    def _deployed(self, service: dict[str, Any]) -> dict[str, Any]:
        name = service["metadata"]["name"]
        previous = self.services.get(name)
        generation = (previous["metadata"]["generation"] + 1) if previous else 1
        revision = f"{name}-{generation:05d}-abc"
        service = json.loads(json.dumps(service))
        service["metadata"].update(generation=generation, uid="uid-1",
                                   resourceVersion=f"v{generation}")
        url = self.service_url(name)
        service["status"] = {
            "observedGeneration": generation, "url": url, "address": {"url": url},
            "latestCreatedRevisionName": revision, "latestReadyRevisionName": revision,
            "traffic": [{"revisionName": revision, "percent": 100, "latestRevision": True}],
            "conditions": [{"type": t, "status": "True"}
                           for t in ("Ready", "ConfigurationsReady", "RoutesReady")],
        }
        self.services[name] = service
        template = service["spec"]["template"]
        self.revisions.append({
            "apiVersion": "serving.knative.dev/v1", "kind": "Revision",
            "metadata": {"name": revision, "namespace": self.project,
                         "labels": dict(template.get("metadata", {}).get("labels", {})),
                         "annotations": dict(template.get("metadata", {}).get("annotations", {}))},
            "spec": template.get("spec", {}),
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        })
        return service

    def health(self, name: str) -> int:
        """What the Cloud Run service `name` answers an unauthenticated GET /healthz."""
        if name not in self.services:
            return 404
        bindings = self.policies.get(f"run/{name}", {}).get("bindings", [])
        public = any(b.get("role") == "roles/run.invoker" and "allUsers" in b.get("members", [])
                     for b in bindings)
        return 200 if public else 403


def _account(project: str, email: str, extra: dict[str, Any]) -> dict[str, Any]:
    return {"name": f"projects/{project}/serviceAccounts/{email}", "email": email,
            "projectId": project, "uniqueId": "1" + str(abs(hash(email)))[:20], **extra}


def _error(code: int, status: str, message: str) -> tuple[int, Any]:
    return code, {"error": {"code": code, "message": message, "status": status}}


def _handler(fake: FakeGoogle) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_CONNECT(self) -> None:
            with fake._lock:
                fake.unexpected.append(f"CONNECT {self.path}")
            self.send_response(403)
            self.send_header("Content-Length", "0")
            self.end_headers()
            self.close_connection = True

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            url = urlsplit(self.path)
            if not url.hostname:  # a request to this server itself: a Cloud Run service
                parts = url.path.strip("/").split("/")
                if len(parts) == 3 and parts[0] == "run" and parts[2] == "healthz":
                    status = fake.health(parts[1])
                    return self._reply(status, {"status": "ok"} if status == 200 else
                                       {"error": "Forbidden"})
                return self._reply(404, {"error": "not found"})
            body: Any = json.loads(raw) if raw.strip() else None
            host = url.hostname
            api = host.split(".")[0].split("-")[-1]
            call = Call(api, self.command, host, url.path, parse_qs(url.query), body)
            if not host.endswith(".googleapis.test") or api not in APIS:
                with fake._lock:
                    fake.unexpected.append(call.line)
                return self._reply(502, {"error": "not a faked API"})
            with fake._lock:
                fake.calls.append(call)
                status, answer = fake.answer(call)
            self._reply(status, answer)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

    return Handler
