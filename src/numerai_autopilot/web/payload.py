"""The webhook body Numerai sends, parsed strictly enough to say what is wrong.

    round open: {"roundNumber": 371, "dataVersion": 1, "triggerId": "99361e43-..."}
    test:       {"roundNumber": "test", "dataVersion": 1, "triggerId": "ea6a...", "isTest": true}

Unknown fields are ignored (Numerai may add some); known ones are checked.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StringConstraints
from pydantic import ValidationError as PydanticValidationError

from numerai_autopilot.errors import AutopilotError

MAX_BODY_BYTES = 64 * 1024
_MAX_DEPTH = 32

TriggerId = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
]


class WebhookPayload(BaseModel):
    """The body of Numerai's round-open (or test) webhook."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    roundNumber: Annotated[StrictInt, Field(ge=0, le=1_000_000)] | Literal["test"]
    triggerId: TriggerId
    dataVersion: StrictInt | Annotated[str, StringConstraints(max_length=32)] | None = None
    isTest: StrictBool = False

    @property
    def is_test(self) -> bool:
        """A test trigger: `isTest`, or a `roundNumber` of "test"."""
        return self.isTest or self.roundNumber == "test"

    @property
    def round_number(self) -> int | None:
        """The round that opened, or None for a test trigger."""
        return None if self.roundNumber == "test" else int(self.roundNumber)


class PayloadError(AutopilotError):
    """The webhook body is not Numerai's payload; `field` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def parse_payload(body: bytes) -> WebhookPayload:
    """Parse and check a webhook body (bytes, as received).

    :returns: the payload; unknown fields are dropped.
    :raises PayloadError: the body is not JSON, not an object, nested deeper than 32
        levels, or a known field is missing or wrong; `field` names it ("body" for the
        whole), and the message says what Numerai sends instead.
    """
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError("body", f"not JSON ({exc}); send Numerai's JSON payload") from None
    except RecursionError:
        raise PayloadError("body", "JSON nested too deeply") from None
    except ValueError:  # CPython refuses integers of more than 4,300 digits
        raise PayloadError("body", "a number in the JSON is too long; send Numerai's payload") from None
    if not isinstance(data, dict):
        raise PayloadError("body", f"expected a JSON object, got {type(data).__name__}")
    if _depth(data) > _MAX_DEPTH:
        raise PayloadError("body", f"JSON nested deeper than {_MAX_DEPTH} levels")
    try:
        return WebhookPayload.model_validate(data)
    except PydanticValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        field = str(first["loc"][0]) if first["loc"] else "body"
        if first["type"] == "missing":
            raise PayloadError(field, "required; Numerai always sends it") from None
        raise PayloadError(field, _FIELD_RULES.get(field, first["msg"])) from None


_FIELD_RULES = {
    "roundNumber": 'must be a round number (a non-negative integer) or "test"',
    "triggerId": "must be 1 to 128 letters, digits, '-', '_', '.' or ':'",
    "dataVersion": "must be an integer or a string of at most 32 characters",
    "isTest": "must be true or false",
}


def _depth(value: object) -> int:
    stack: list[tuple[object, int]] = [(value, 1)]
    deepest = 0
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > _MAX_DEPTH:
            break
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children)
    return deepest
