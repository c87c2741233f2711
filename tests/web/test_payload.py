"""The webhook body's reader: what it reads from each body, what it notes as unreadable, and
the only bodies it refuses (not a JSON object)."""

from __future__ import annotations

import json

import pytest

from numerai_autopilot.web import PayloadError, WebhookPayload, parse_payload
from numerai_autopilot.web.payload import MAX_KEPT_CHARS, kept_text

# name: (body, trigger id, round, is test, the fields noted as unreadable)
READ: dict[str, tuple[bytes, str | None, int | None, bool, set[str]]] = {
    "round open": (b'{"roundNumber": 371, "dataVersion": 1, "triggerId": "99361e43-ab"}',
                   "99361e43-ab", 371, False, set()),
    "test": (b'{"roundNumber": "test", "triggerId": "ea6a", "isTest": true}', "ea6a", None, True,
             set()),
    "is test on a round": (b'{"roundNumber": 5, "triggerId": "t", "isTest": true}', "t", 5, True,
                           set()),
    "string round": (b'{"roundNumber": "371", "triggerId": "t"}', "t", 371, False, set()),
    "string round with spaces and .0": (b'{"roundNumber": " 371.0 ", "triggerId": "t"}', "t", 371,
                                        False, set()),
    "float round": (b'{"roundNumber": 371.0, "triggerId": "t"}', "t", 371, False, set()),
    "TEST in capitals": (b'{"roundNumber": "TEST", "triggerId": "t"}', "t", None, True, set()),
    "isTest null": (b'{"roundNumber": 371, "triggerId": "t", "isTest": null}', "t", 371, False,
                    set()),
    "isTest as strings": (b'{"roundNumber": 371, "triggerId": "t", "isTest": "True"}', "t", 371,
                          True, set()),
    "isTest false string": (b'{"roundNumber": 371, "triggerId": "t", "isTest": "false"}', "t", 371,
                            False, set()),
    "any dataVersion": (b'{"roundNumber": 5, "triggerId": "t", "dataVersion": {"v": [5, 3]}}', "t",
                        5, False, set()),
    "unknown fields": (b'{"roundNumber": 5, "triggerId": "t", "new": "x", "n": 1.5}', "t", 5,
                       False, set()),
    "deep unknown field": (json.dumps({"roundNumber": 5, "triggerId": "t",
                                       "x": json.loads("[" * 40 + "]" * 40)}).encode(),
                           "t", 5, False, set()),
    "UTF-16": ('{"roundNumber": 5, "triggerId": "t"}'.encode("utf-16"), "t", 5, False, set()),
    "UTF-8 with a BOM": (b'\xef\xbb\xbf{"roundNumber": 5, "triggerId": "t"}', "t", 5, False, set()),
    "duplicate key: the last": (b'{"roundNumber": 1, "roundNumber": 5, "triggerId": "t"}', "t", 5,
                                False, set()),
    # what cannot be read: the current round, a trigger id of ours
    "numerai-cli's mock": (b'{"roundNumber": -1, "dataVersion": 1}', None, None, False,
                           {"roundNumber", "triggerId"}),
    "empty object": (b"{}", None, None, False, {"roundNumber", "triggerId"}),
    "trigger id only": (b'{"triggerId": "t"}', "t", None, False, {"roundNumber"}),
    "null round": (b'{"roundNumber": null, "triggerId": "t"}', "t", None, False, {"roundNumber"}),
    "junk round": (b'{"roundNumber": "next", "triggerId": "t"}', "t", None, False, {"roundNumber"}),
    "fractional round": (b'{"roundNumber": 1.5, "triggerId": "t"}', "t", None, False,
                         {"roundNumber"}),
    "bool round": (b'{"roundNumber": true, "triggerId": "t"}', "t", None, False, {"roundNumber"}),
    "NaN round": (b'{"roundNumber": NaN, "triggerId": "t"}', "t", None, False, {"roundNumber"}),
    "round too large": (b'{"roundNumber": 1000001, "triggerId": "t"}', "t", None, False,
                        {"roundNumber"}),
    "5,000-digit round": (b'{"roundNumber": 1' + b"0" * 5000 + b', "triggerId": "t"}', "t", None,
                          False, {"roundNumber"}),
    "no trigger": (b'{"roundNumber": 5}', None, 5, False, {"triggerId"}),
    "null trigger": (b'{"roundNumber": 5, "triggerId": null}', None, 5, False, {"triggerId"}),
    "number trigger": (b'{"roundNumber": 5, "triggerId": 12}', None, 5, False, {"triggerId"}),
    "trigger with path characters": (b'{"roundNumber": 5, "triggerId": "../x"}', None, 5, False,
                                     {"triggerId"}),
    "trigger with a NUL": (b'{"roundNumber": 5, "triggerId": "a\\u0000b"}', None, 5, False,
                           {"triggerId"}),
    "empty trigger": (b'{"roundNumber": 5, "triggerId": ""}', None, 5, False, {"triggerId"}),
    "trigger too long": (json.dumps({"roundNumber": 5, "triggerId": "a" * 129}).encode(), None, 5,
                         False, {"triggerId"}),
    "trigger in the form of ours": (b'{"roundNumber": 5, "triggerId": "watcher-round-5"}', None, 5,
                                    False, {"triggerId"}),
    "junk isTest": (b'{"roundNumber": 5, "triggerId": "t", "isTest": "yes"}', "t", 5, False,
                    {"isTest"}),
}


@pytest.mark.parametrize("name", list(READ))
def test_each_body_tells_what_it_can(name: str) -> None:
    body, trigger_id, round_number, is_test, unreadable = READ[name]
    payload = parse_payload(body)
    assert isinstance(payload, WebhookPayload)
    assert (payload.trigger_id, payload.round_number, payload.is_test) == (
        trigger_id, round_number, is_test)
    assert {note.split(" ")[0] for note in payload.unreadable} == unreadable, payload.unreadable


def test_what_could_not_be_read_is_named_with_its_value() -> None:
    payload = parse_payload(b'{"roundNumber": -1, "triggerId": ["x"], "isTest": "' + b"y" * 100
                            + b'"}')
    assert payload.unreadable == ("roundNumber (-1)", 'isTest ("' + "y" * 36 + "...)",
                                  "triggerId (an array)")
    assert parse_payload(b"{}").unreadable == ("roundNumber (missing)", "triggerId (missing)")


def test_the_raw_body_is_kept_as_text_and_bounded() -> None:
    body = json.dumps({"roundNumber": 5, "triggerId": "t", "é": "<b>"}).encode()
    assert parse_payload(body).raw == body.decode()
    assert parse_payload('{"roundNumber": 5}'.encode("utf-16")).raw == '{"roundNumber": 5}'
    big = json.dumps({"roundNumber": 5, "pad": "x" * 10_000}).encode()
    kept = parse_payload(big).raw
    assert kept.startswith(big.decode()[:MAX_KEPT_CHARS])
    assert kept.endswith(f"... (cut; {len(big):,} bytes in all)")
    assert "\x00" not in kept_text(b'{"a": "\x00"}') and kept_text(b"\xff{}").endswith("{}")


REFUSED: dict[str, tuple[bytes, str]] = {
    "not JSON": (b"{", "not JSON"),
    "HTML": (b"\xff\xfe<html>garbage", "not JSON"),
    "empty": (b"", "empty"),
    "blank": (b"  \n", "empty"),
    "a list": (b"[1]", "a JSON array, not an object"),
    "a string": (b'"371"', "a JSON string, not an object"),
    "null": (b"null", "a JSON null, not an object"),
    "nested 10,000 deep": (b"[" * 10_000 + b"]" * 10_000, "nested too deeply"),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_only_what_is_not_a_json_object_is_refused_saying_what_to_send(name: str) -> None:
    body, words = REFUSED[name]
    with pytest.raises(PayloadError) as raised:
        parse_payload(body)
    assert raised.value.field == "body"
    assert words in raised.value.message
    assert "send a JSON object such as {" in raised.value.message
