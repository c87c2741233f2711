"""Plain values the Numerai client returns, parsed from Numerai's JSON at the boundary."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from pathlib import Path
from typing import Any


class Tournament(IntEnum):
    """Numerai's tournament ids."""

    CLASSIC = 8
    SIGNALS = 11
    CRYPTO = 12


def tournament_of(value: int) -> Tournament:
    """``value`` as a Tournament; a ValueError names the valid ids.

    >>> tournament_of(11)
    <Tournament.SIGNALS: 11>
    """
    try:
        return Tournament(value)
    except ValueError:
        valid = ", ".join(f"{t.value} ({t.name.lower()})" for t in Tournament)
        raise ValueError(f"unknown tournament {value!r}; use one of {valid}") from None


@dataclass(frozen=True, slots=True)
class RoundInfo:
    """A tournament round; times are timezone-aware UTC, None when Numerai sent none."""

    number: int
    open_time: datetime | None
    close_time: datetime | None
    tournament: Tournament = Tournament.CLASSIC

    @classmethod
    def from_json(cls, raw: dict[str, Any], tournament: Tournament) -> RoundInfo:
        """A round from Numerai's JSON (`rounds` query); KeyError without a number."""
        return cls(
            number=int(raw["number"]),
            open_time=parse_datetime(raw.get("openTime")),
            close_time=parse_datetime(raw.get("closeTime")),
            tournament=tournament,
        )


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One of the account's models."""

    id: str
    name: str
    tournament: int

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ModelInfo:
        """A model from Numerai's JSON (`account.models`)."""
        return cls(id=str(raw["id"]), name=str(raw["name"]), tournament=int(raw["tournament"]))


@dataclass(frozen=True, slots=True)
class SubmissionInfo:
    """A past submission of a model."""

    id: str
    filename: str | None
    inserted_at: datetime | None
    trigger_id: str | None
    round_number: int | None
    tournament: int | None

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> SubmissionInfo:
        """A submission from Numerai's JSON (`submissions` query)."""
        round_ = raw.get("round") or {}
        number = round_.get("number")
        tournament = round_.get("tournament")
        return cls(
            id=str(raw["id"]),
            filename=raw.get("filename"),
            inserted_at=parse_datetime(raw.get("insertedAt")),
            trigger_id=raw.get("triggerId"),
            round_number=None if number is None else int(number),
            tournament=None if tournament is None else int(tournament),
        )


@dataclass(frozen=True, slots=True)
class UploadTarget:
    """Where to PUT a submission file, and the name to create the submission with.

    ``url`` is presigned: it is a credential, keep it out of logs.
    """

    filename: str
    url: str

    def __repr__(self) -> str:
        return f"UploadTarget(filename={self.filename!r}, url=<presigned>)"


@dataclass(frozen=True, slots=True)
class DownloadResult:
    """A completed download: the final path and its size in bytes."""

    path: Path
    size: int


def parse_datetime(value: object) -> datetime | None:
    """Numerai's ISO-8601 timestamps (``2026-07-07T12:00:00Z``) as aware datetimes."""
    if not isinstance(value, str) or not value:
        return None
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed
