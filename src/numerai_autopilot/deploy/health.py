"""After a deploy: does the service answer Numerai, who calls it without credentials?

Numerai's webhooks carry no Google identity, so the service must allow unauthenticated
calls (`allUsers` as `roles/run.invoker`). An organisation policy that refuses `allUsers`
(domain restricted sharing) makes `gcloud run deploy --allow-unauthenticated` print
"Setting IAM policy failed" and still exit 0; every webhook would then get 403. So the deploy
reads gcloud's output for that text and requests `/healthz` without credentials, and
registers webhooks only after a 200.

    check_public(url, service="autopilot", region="europe-west1", iam_failed=False)
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from numerai_autopilot.errors import AutopilotError

IAM_FAILED = "Setting IAM policy failed"


class ServiceCheckError(AutopilotError):
    """The deployed service does not answer an unauthenticated request with 200; the
    message says what it answered, why that is likely, and the fix."""


def check_public(url: str, *, service: str, region: str, iam_failed: bool,
                 wait_s: float = 120.0, http: httpx.Client | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
    """Return once `GET {url}/healthz`, without credentials, answers 200.

    A refusal (401/403) is waited out for a while, as a new `allUsers` binding takes a moment
    to apply, unless `iam_failed` (gcloud said "Setting IAM policy failed"): then at once.
    A cold start (the first request starts an instance, restores the ledger) is waited for
    as well, `wait_s` in all.

    :raises ServiceCheckError: the last answer was not 200; the message explains it.
    """
    client = http or httpx.Client(timeout=60.0)
    deadline = time.monotonic() + wait_s
    answer = "no answer"
    try:
        while True:
            try:
                status = client.get(f"{url.rstrip('/')}/healthz").status_code
                answer = f"HTTP {status}"
            except httpx.HTTPError as exc:
                status, answer = 0, f"no answer ({type(exc).__name__}: {exc})"
            if status == 200:
                return
            if status in (401, 403) and iam_failed:
                break
            if time.monotonic() + 5 > deadline:
                break
            sleep(5.0)
    finally:
        if http is None:
            client.close()
    raise ServiceCheckError(_explain(url, service, region, answer, iam_failed))


def _explain(url: str, service: str, region: str, answer: str, iam_failed: bool) -> str:
    head = (f"{url}/healthz answered {answer} to a request without credentials, so Numerai's "
            "webhooks would fail too; no webhook was registered. ")
    grant = (f"gcloud run services add-iam-policy-binding {service} --region {region} "
             "--member allUsers --role roles/run.invoker")
    if iam_failed:
        return head + (
            f"gcloud could not let allUsers invoke the service ('{IAM_FAILED}'): an "
            "organisation policy (domain restricted sharing, "
            "constraints/iam.allowedPolicyMemberDomains) most likely refuses allUsers in this "
            "project. Fix: have an organisation admin allow it for this project and run "
            f"`{grant}`, or turn off the invoker check for this service "
            f"(`gcloud run services update {service} --region {region} "
            "--no-invoker-iam-check`, where your organisation allows it); then "
            f"`autopilot register --base-url {url}`."
        )
    if answer in ("HTTP 401", "HTTP 403"):
        return head + (
            f"The service does not allow unauthenticated calls. Fix: `{grant}`, then "
            f"`autopilot register --base-url {url}`."
        )
    return head + (
        "The service did not start or is failing. Read its log: "
        f"`gcloud run services logs read {service} --region {region} --limit 100`, fix the "
        "cause and deploy again."
    )
