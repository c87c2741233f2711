"""Sizes (`4GiB`) and durations (`10m`) as the configuration writes them, parsed into bytes
and seconds; `Size` and `Duration` are the pydantic field types that parse them."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "": 1.0}


def parse_size(value: object) -> int:
    """Bytes from `4GiB`, `512MB`, `1.5G` or a plain integer; ValueError names the forms.

    >>> parse_size("4GiB")
    4294967296
    """
    if isinstance(value, bool):
        raise ValueError("expected a size such as '4GiB' or a number of bytes")  # noqa: TRY004
    if isinstance(value, int | float):
        return int(value)
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a size; write e.g. '4GiB', '512MB' or bytes")
    number, unit = float(match.group(1)), (match.group(2) or "B").upper()
    prefix = unit[0] if unit[0] in "KMGT" else ""
    scale = 1024 ** " KMGT".index(prefix or " ") if "I" in unit else _UNITS[prefix]
    return int(number * scale)


def parse_duration(value: object) -> float:
    """Seconds from `600`, `600s`, `10m`, `1.5h` or `250ms`; ValueError names the forms.

    >>> parse_duration("10m")
    600.0
    """
    if isinstance(value, bool):
        raise ValueError("expected a duration such as '600s' or '10m'")  # noqa: TRY004
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a duration; write e.g. '600s', '10m' or '1h'")
    return float(match.group(1)) * _SECONDS[match.group(2) or ""]


def format_size(size: int) -> str:
    """`size` bytes in the form error messages use.

    >>> format_size(4294967296)
    '4 GiB'
    """
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size} B"


Size = Annotated[int, BeforeValidator(parse_size)]
Duration = Annotated[float, BeforeValidator(parse_duration)]
