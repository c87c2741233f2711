"""The webhook body's parser: what it accepts, and what it refuses naming the field."""

from __future__ import annotations

import json

import pytest

from numerai_autopilot.web import PayloadError, WebhookPayload, parse_payload

ACCEPTED: dict[str, tuple[bytes, int | None, bool]] = {
    "round open": (b'{"roundNumber": 371, "dataVersion": 1, "triggerId": "99361e43-ab"}', 371, False),
    "test": (b'{"roundNumber": "test", "triggerId": "ea6a", "isTest": true}', None, True),
    "is test on a round": (b'{"roundNumber": 5, "triggerId": "t", "isTest": true}', 5, True),
    "unknown flat fields": (b'{"roundNumber": 5, "triggerId": "t", "new": "x", "n": 1.5}', 5, False),
    "string data version": (b'{"roundNumber": 5, "triggerId": "t", "dataVersion": "v5.0"}', 5, False),
    "nested unknown field": (
        b'{"roundNumber": 5, "triggerId": "t", "extra": {"a": [1, 2]}}', 5, False),
    "brace inside a string": (b'{"roundNumber": 5, "triggerId": "t", "note": "{"}', 5, False),
    "UTF-16": ('{"roundNumber": 5, "triggerId": "t"}'.encode("utf-16"), 5, False),
    "UTF-8 with a BOM": (b'\xef\xbb\xbf{"roundNumber": 5, "triggerId": "t"}', 5, False),
    "duplicate key: the last": (b'{"roundNumber": 1, "roundNumber": 5, "triggerId": "t"}', 5, False),
}


@pytest.mark.parametrize("name", list(ACCEPTED))
def test_accepted(name: str) -> None:
    body, round_number, is_test = ACCEPTED[name]
    payload = parse_payload(body)
    assert isinstance(payload, WebhookPayload)
    assert (payload.round_number, payload.is_test) == (round_number, is_test)


REFUSED: dict[str, tuple[bytes, str, str]] = {
    "not JSON": (b"{", "body", "not JSON"),
    "NaN round": (b'{"roundNumber": NaN, "triggerId": "t"}', "roundNumber", "round number"),
    "a list": (b"[1]", "body", "expected a JSON object"),
    "no trigger": (b'{"roundNumber": 5}', "triggerId", "required"),
    "negative round": (b'{"roundNumber": -1, "triggerId": "t"}', "roundNumber", "round number"),
    "float round": (b'{"roundNumber": 5.0, "triggerId": "t"}', "roundNumber", "round number"),
    "string round": (b'{"roundNumber": "5", "triggerId": "t"}', "roundNumber", "round number"),
    "bool round": (b'{"roundNumber": true, "triggerId": "t"}', "roundNumber", "round number"),
    "huge round": (b'{"roundNumber": 1' + b"0" * 5000 + b', "triggerId": "t"}', "body",
                   "too long"),
    "bad trigger": (b'{"roundNumber": 5, "triggerId": "../x"}', "triggerId", "letters, digits"),
    "empty trigger": (b'{"roundNumber": 5, "triggerId": ""}', "triggerId", "letters, digits"),
    "nul in trigger": (b'{"roundNumber": 5, "triggerId": "a\\u0000b"}', "triggerId",
                       "letters, digits"),
    "string isTest": (b'{"roundNumber": 5, "triggerId": "t", "isTest": "yes"}', "isTest",
                      "true or false"),
    "long data version": (json.dumps({"roundNumber": 5, "triggerId": "t",
                                      "dataVersion": "v" * 33}).encode(), "dataVersion",
                          "at most 32"),
    "deep": (json.dumps({"roundNumber": 5, "triggerId": "t",
                         "x": json.loads("[" * 40 + "]" * 40)}).encode(), "body", "deeper"),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_refused_naming_the_field(name: str) -> None:
    body, field, words = REFUSED[name]
    with pytest.raises(PayloadError) as raised:
        parse_payload(body)
    assert raised.value.field == field
    assert words in raised.value.message
