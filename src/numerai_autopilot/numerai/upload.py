"""The PUT of a submission file to a presigned URL, with its answer checked.

numerapi never looks at this answer, so a refused upload still gets a create_submission
and the round is silently lost. Here every way the PUT can fail ends in UploadError. The URL
is sent exactly as Numerai gave it: its query is the signature of a presigned URL, and
httpx keeps its bytes (``%2F``, ``+``, ``=``) as they are.
"""

from __future__ import annotations

import asyncio

import httpx

from numerai_autopilot.numerai.errors import (
    NumeraiError,
    Redactor,
    TransientError,
    UploadError,
    retry_after_seconds,
    safe_url,
    strip_queries,
    transient_status,
    translate_transport_error,
)
from numerai_autopilot.numerai.retry import Clock, RetryPolicy, retry_call


async def put_presigned(
    http: httpx.AsyncClient,
    url: str,
    data: bytes,
    *,
    policy: RetryPolicy,
    deadline: float | None,
    timeout: float,
    clock: Clock,
    redact: Redactor,
) -> None:
    """PUTs ``data`` to ``url``; UploadError unless the server answered 2xx.

    A refusal (4xx) raises at once; so does a redirect (3xx), which is not followed: the
    signature covers this URL, and a redirected PUT would resend the file to a place nobody
    signed. 5xx and dropped connections are retried (a PUT is idempotent) and raise
    UploadError with ``retryable=True`` at the deadline.
    """
    where = safe_url(url)

    async def attempt(remaining: float) -> None:
        try:
            async with asyncio.timeout(remaining):
                # No Authorization header: the URL carries its own signature, and the
                # storage behind it is not Numerai's API.
                resp = await http.put(
                    url, content=data, timeout=timeout, follow_redirects=False
                )
        except TimeoutError as exc:
            raise TransientError(f"upload to {where}: the deadline cut the transfer") from exc
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise translate_transport_error(exc, f"upload to {where}") from exc
        if resp.is_success:
            return
        if resp.has_redirect_location:
            raise UploadError(
                f"upload to {where} answered HTTP {resp.status_code}, a redirect to "
                f"{safe_url(resp.headers['location'])}; a presigned upload URL takes the PUT "
                "itself, so the file was not sent on and the submission was not created "
                "(ask Numerai for a new upload URL; if this repeats, a proxy is redirecting)",
                status_code=resp.status_code,
            )
        if transient_status(resp.status_code):
            raise TransientError(
                f"upload to {where}: HTTP {resp.status_code}",
                retry_after=retry_after_seconds(resp),
            )
        raise UploadError(
            f"upload to {where} refused with HTTP {resp.status_code}"
            f"{_snippet(resp, redact)}; the submission was not created",
            status_code=resp.status_code,
        )

    try:
        await retry_call(
            attempt, what=f"upload to {where}", policy=policy, deadline=deadline, clock=clock
        )
    except TransientError as exc:
        raise UploadError(f"{exc}; the submission was not created", retryable=True) from exc
    except UploadError:
        raise
    except NumeraiError as exc:
        raise UploadError(f"{exc}; the submission was not created") from exc


def _snippet(resp: httpx.Response, redact: Redactor) -> str:
    """The start of the refusal's body (S3 says why there), without URL queries."""
    text = resp.text.strip().replace("\n", " ")[:200] if resp.content else ""
    return f" ({redact(strip_queries(text))})" if text else ""
