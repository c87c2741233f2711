"""Presigned-style URLs: expiry, forgery, ranges, and the record of every download."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
from sandbox_helpers import DATASET

from numerai_autopilot.sandbox.testing import RunningSandbox

LIVE = "v5.3/live.parquet"


def _url(sandbox: RunningSandbox, filename: str = LIVE) -> str:
    url: str = sandbox.graphql(DATASET, {"filename": filename}, auth=False)["data"]["dataset"]
    return url


def test_download_with_length_and_ranges(sandbox: RunningSandbox) -> None:
    url = _url(sandbox)
    full = httpx.get(url)
    assert full.status_code == 200
    size = len(full.content)
    assert int(full.headers["content-length"]) == size
    assert full.headers["accept-ranges"] == "bytes"
    assert full.content[:4] == b"PAR1"

    part = httpx.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == full.content[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{size}"
    tail = httpx.get(url, headers={"Range": "bytes=1000-"})
    assert tail.content == full.content[1000:]
    suffix = httpx.get(url, headers={"Range": "bytes=-10"})
    assert suffix.content == full.content[-10:]
    bad = httpx.get(url, headers={"Range": f"bytes={size}-"})
    assert bad.status_code == 416
    head = httpx.head(url)
    assert head.status_code == 200 and int(head.headers["content-length"]) == size

    records = sandbox.downloads()
    assert [r["status_code"] for r in records] == [200, 206, 206, 206]  # HEAD/416 not counted
    assert records[0] == records[0] | {"filename": LIVE, "round_number": 1100, "completed": True,
                                       "bytes_sent": size, "tournament": 8}
    assert records[1]["range_start"] == 100 and records[1]["bytes_sent"] == 100


def test_static_files_are_served_without_round(sandbox: RunningSandbox) -> None:
    response = httpx.get(_url(sandbox, "v5.3/features.json"))
    assert response.headers["content-type"] == "application/json"
    sets = response.json()["feature_sets"]
    assert len(sets["small"]) == 12 and len(sets["all"]) == 60
    assert sandbox.downloads()[0]["round_number"] is None


def test_forged_and_unsigned_urls_are_refused(sandbox: RunningSandbox) -> None:
    url = _url(sandbox)
    forged = url[:-4] + ("0000" if not url.endswith("0000") else "1111")
    response = httpx.get(forged)
    assert response.status_code == 403 and "SignatureDoesNotMatch" in response.text
    unsigned = url.split("?")[0]
    response = httpx.get(unsigned)
    assert response.status_code == 403 and "AccessDenied" in response.text
    other_file = url.replace("live.parquet", "train.parquet")
    assert httpx.get(other_file).status_code == 403
    assert sandbox.downloads() == []


def test_a_url_sent_other_than_as_given_is_refused(sandbox: RunningSandbox) -> None:
    """The signature covers the query's bytes: decoding or re-encoding any of them (as a
    client rebuilding the URL from its parameters would) breaks it."""
    url = _url(sandbox)
    query = urlsplit(url).query
    for original, changed in (("%2F", "/"), ("%2B", "+"), ("%3D%3D", "=="), ("+", "%20"),
                              ("%2F", "%2f"), ("==&", "%3D%3D&")):
        assert original in query, original
        response = httpx.get(url.replace(original, changed, 1))
        assert response.status_code == 403 and "SignatureDoesNotMatch" in response.text
    assert sandbox.downloads() == []
    assert httpx.get(url).status_code == 200
    assert [d["query"] for d in sandbox.downloads()] == [query]


def test_expired_url_is_refused(sandbox: RunningSandbox) -> None:
    path = urlsplit(_url(sandbox)).path
    expired = sandbox.sandbox.signer.sign(sandbox.url, "GET", path, ttl_s=-5)
    response = httpx.get(expired)
    assert response.status_code == 403
    assert "<Code>AccessDenied</Code>" in response.text and "expired" in response.text


def test_signed_url_for_a_missing_file_is_404(sandbox: RunningSandbox) -> None:
    url = sandbox.sandbox.signer.sign(sandbox.url, "GET", "/files/8/1100/v5.3/nope.parquet")
    response = httpx.get(url)
    assert response.status_code == 404 and "NoSuchKey" in response.text


def test_put_to_a_url_never_issued_is_refused_and_recorded(sandbox: RunningSandbox) -> None:
    model = sandbox.models["alpha"]
    response = httpx.put(f"{sandbox.url}/uploads/{model}/abc/p.csv?expires=9999999999"
                         "&signature=deadbeef", content=b"id,prediction\n")
    assert response.status_code == 403 and "SignatureDoesNotMatch" in response.text
    # Signed by the sandbox but never handed out by submission_upload_auth.
    signed = sandbox.sandbox.signer.sign(sandbox.url, "PUT", f"/uploads/{model}/abc/p.csv")
    response = httpx.put(signed, content=b"id,prediction\n")
    assert response.status_code == 404 and "NoSuchUpload" in response.text
    assert [u["status_code"] for u in sandbox.uploads()] == [403, 404]
    # The download URLs do not work as upload URLs either.
    assert httpx.put(_url(sandbox), content=b"x").status_code == 405


def test_expired_upload_url_is_refused(sandbox: RunningSandbox) -> None:
    model = sandbox.models["alpha"]
    expired = sandbox.sandbox.signer.sign(sandbox.url, "PUT", f"/uploads/{model}/x/p.csv",
                                          ttl_s=-1)
    response = httpx.put(expired, content=b"id,prediction\n")
    assert response.status_code == 403 and "expired" in response.text
