"""The webhook body Numerai sends, read for what it can tell; never refused for its fields.

    round open: {"roundNumber": 371, "dataVersion": 1, "triggerId": "99361e43-..."}
    test:       {"roundNumber": "test", "dataVersion": 1, "triggerId": "ea6a...", "isTest": true}
    numerai-cli's mock: {"roundNumber": -1, "dataVersion": 1}

No document fixes the body's shape, and the references differ (docs: numerai-protocol.md),
so the rule is: a request with a valid token for a configured model is a round for that
model. `parse_payload` reads from the body the trigger id and, when they can be read, the
round and whether it is a test; `WebhookPayload.unreadable` names what could not be read:

- `roundNumber`: an integer, an integral float (`371.0`) or a numeric string (`"371"`), 0 to
  1,000,000, or `"test"`. Anything else (absent, null, negative, junk) is unreadable: the run
  is for the round current when it arrives.
- `triggerId`: Numerai's when it is 1 to 128 letters, digits, `-`, `_`, `.` or `:` (and not
  in the form of one of ours). Anything else is unreadable: the run gets a trigger id of ours.
- `isTest`: true or false, or the strings "true" / "false"; absent or null is false (not
  unreadable); anything else is unreadable and taken as false.
- `dataVersion` and any other field: ignored (the model's config says the data version).

Only a body that is not a JSON object is refused (`PayloadError`): Numerai sends nothing else.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from numerai_autopilot.errors import AutopilotError
from numerai_autopilot.ledger import is_own_trigger_id

MAX_BODY_BYTES: Final = 64 * 1024
MAX_KEPT_CHARS: Final = 4096  # of the body, kept on the run for the record
MAX_ROUND: Final = 1_000_000
_TRIGGER_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}", re.ASCII)
_NUMERIC_ROUND = re.compile(r"([0-9]{1,7})(?:\.0*)?", re.ASCII)
_LONGEST_INT = 30  # digits; a longer JSON integer is read as a float (CPython refuses huge ints)
_EXAMPLE = '{"roundNumber": 371, "dataVersion": 1, "triggerId": "99361e43-..."}'


@dataclass(frozen=True, slots=True)
class WebhookPayload:
    """What a webhook body tells.

    :param trigger_id: Numerai's trigger id, or None when the body has no usable one.
    :param round_number: the round, or None: a test trigger's, or a round that could not be
        read (the run is for the current round).
    :param is_test: a test trigger (`isTest`, or a `roundNumber` of "test").
    :param raw: the body as text, at most `MAX_KEPT_CHARS` characters (then marked as cut).
    :param unreadable: what could not be read, each as `field (value)`, e.g.
        `'roundNumber (-1)'`, `'triggerId (missing)'`.
    """

    trigger_id: str | None
    round_number: int | None
    is_test: bool
    raw: str
    unreadable: tuple[str, ...] = ()


class WebhookBody(BaseModel):
    """The webhook body as `/openapi.json` documents it: every field optional, any other
    field allowed. Documentation only: `parse_payload` reads bodies and refuses none of
    them for its fields."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"roundNumber": 371, "dataVersion": 1,
         "triggerId": "99361e43-54f4-4c1b-8f0b-2c7c4b1d8a31"},
        {"roundNumber": "test", "dataVersion": 1,
         "triggerId": "ea6a1f34-1c1d-4f61-9b8b-5d5a9c7c1e02", "isTest": True},
    ]})

    roundNumber: int | float | str | None = Field(
        None, description='The round (371, 371.0 or "371"), or "test". Absent, null, negative or '
                          "unreadable: the round current when the webhook arrives.")
    triggerId: str | None = Field(
        None, description="Numerai's trigger id, sent back with the submission. Absent or "
                          "unusable: the run gets a trigger id of the server's own.")
    dataVersion: Any = Field(None, description="Ignored: the model's config names its data.")
    isTest: bool | str | None = Field(
        None, description='A test trigger: true, or "true". Absent or null: false.')


class PayloadError(AutopilotError):
    """The webhook body is not a JSON object; `field` is "body", the message says why and
    what to send."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def parse_payload(body: bytes) -> WebhookPayload:
    """Read a webhook body (bytes, as received) for its trigger id, round and test flag.

    :returns: the payload; see the module docstring for what is read and how.
    :raises PayloadError: the body is not JSON (or too deeply nested to read) or not a JSON
        object.
    """
    data = _json_object(body)
    unreadable: list[str] = []
    round_value = _round(data, unreadable)
    is_test = _is_test(data, unreadable) or round_value == "test"
    return WebhookPayload(
        trigger_id=_trigger_id(data, unreadable),
        round_number=round_value if isinstance(round_value, int) else None,
        is_test=is_test,
        raw=kept_text(body),
        unreadable=tuple(unreadable),
    )


def kept_text(body: bytes) -> str:
    """The body as text for the record: decoded as JSON is (UTF-8, 16 or 32), undecodable
    bytes and NULs replaced, cut after `MAX_KEPT_CHARS` characters with the size noted."""
    text = body.decode(json.detect_encoding(body), errors="replace").replace("\x00", "\ufffd")
    if len(text) <= MAX_KEPT_CHARS:
        return text
    return f"{text[:MAX_KEPT_CHARS]} ... (cut; {len(body):,} bytes in all)"


def _json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object; PayloadError saying why not."""
    send = f"send a JSON object such as {_EXAMPLE}, as Numerai does"
    if not body.strip():
        raise PayloadError("body", f"empty; {send}")
    try:
        data = json.loads(body, parse_int=_integer)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError("body", f"not JSON ({exc}); {send}") from None
    except RecursionError:
        raise PayloadError("body", f"JSON nested too deeply to read; {send}") from None
    if not isinstance(data, dict):
        raise PayloadError("body", f"a JSON {_json_type(data)}, not an object; {send}")
    return data


def _integer(text: str) -> int | float:
    """A JSON integer; one too long for CPython to read becomes a float (an unreadable round)."""
    return int(text) if len(text) <= _LONGEST_INT else float(text)


def _round(data: dict[str, Any], unreadable: list[str]) -> int | Literal["test"] | None:
    """`roundNumber` as a round, "test", or None (noted in `unreadable`)."""
    value = data.get("roundNumber")
    if isinstance(value, str) and value.strip().lower() == "test":
        return "test"
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and (match := _NUMERIC_ROUND.fullmatch(value.strip())):
        number = int(match.group(1))
    else:
        number = None
    if number is not None and 0 <= number <= MAX_ROUND:
        return number
    unreadable.append(_noted(data, "roundNumber"))
    return None


def _is_test(data: dict[str, Any], unreadable: list[str]) -> bool:
    """`isTest` as a flag: absent or null is false; junk is false, noted in `unreadable`."""
    value = data.get("isTest")
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    unreadable.append(_noted(data, "isTest"))
    return False


def _trigger_id(data: dict[str, Any], unreadable: list[str]) -> str | None:
    """`triggerId` when it is usable as Numerai's, else None (noted in `unreadable`)."""
    value = data.get("triggerId")
    if isinstance(value, str) and _TRIGGER_ID.fullmatch(value) and not is_own_trigger_id(value):
        return value
    unreadable.append(_noted(data, "triggerId"))
    return None


def _noted(data: dict[str, Any], field: str) -> str:
    """`field (value)` for a log line: a plain value as JSON (ASCII, cut short), a list or
    an object by its type."""
    if field not in data:
        return f"{field} (missing)"
    value = data[field]
    if isinstance(value, list | dict):
        return f"{field} (an {'array' if isinstance(value, list) else 'object'})"
    shown = json.dumps(value, ensure_ascii=True)
    return f"{field} ({shown if len(shown) <= 40 else shown[:37] + '...'})"


def _json_type(value: object) -> str:
    names = {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)
