"""A registered webhook URL, printed redacted and checked, with its token in the path (what
`register` sets) or in the query (what earlier versions set; still served)."""

from __future__ import annotations

from numerai_autopilot.cli.registration import check_webhook, redact
from numerai_autopilot.config import webhook_token, webhook_url

MODEL = "8a4b0c1d-2e3f-4a5b-9c6d-7e8f9a0b1c2d"
BASE = "https://ap.example"


def test_both_forms_of_our_url_are_ours_and_printed_without_the_token() -> None:
    token = webhook_token("new", MODEL)
    in_path = webhook_url(BASE, MODEL, "new")
    in_query = f"{BASE}/pred/{MODEL}?token={token}"
    assert in_path == f"{BASE}/pred/{MODEL}/{token}"
    for url in (in_path, in_query):
        assert check_webhook(url, MODEL, ["new", "old"], BASE) is None
        assert token not in redact(url)
    assert redact(in_path) == f"{BASE}/pred/{MODEL}/***"
    assert redact(in_query) == f"{BASE}/pred/{MODEL}?token=***"
    assert redact(None) == "(none)"


def test_each_problem_is_named() -> None:
    old = webhook_url(BASE, MODEL, "old")
    assert check_webhook(old, MODEL, ["new", "old"]) == (
        "its token uses a previous secret (rotation not finished)")
    assert check_webhook(old, MODEL, ["new"]) == "its token was not made with server.secret"
    assert check_webhook(f"{BASE}/pred/{MODEL}", MODEL, ["new"]) == (
        "its token was not made with server.secret")
    other = webhook_url(BASE, "another-model", "new")
    assert check_webhook(other, MODEL, ["new"]) == (
        f"registered {BASE}/pred/another-model/*** is not this model's /pred/ URL")
    assert check_webhook(f"{BASE}/hook/{MODEL}", MODEL, ["new"]) == (
        f"registered {BASE}/hook/{MODEL} is not this model's /pred/ URL")
    moved = webhook_url("https://old.example", MODEL, "new")
    assert check_webhook(moved, MODEL, ["new"], BASE) == (
        f"registered https://old.example/pred/{MODEL}/*** is not at {BASE}")
    assert check_webhook(None, MODEL, ["new"]) == "no webhook registered"
