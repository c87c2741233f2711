"""The records the sandbox keeps: models, rounds, upload slots, PUTs, submissions, downloads.

Plain dataclasses; :class:`~numerai_autopilot.sandbox.state.Sandbox` owns and guards them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from .submissions import UploadCheck


@dataclass
class Model:
    id: str
    name: str
    tournament: int
    webhook: str | None = None


@dataclass
class Round:
    tournament: int
    number: int
    open_time: datetime
    close_time: datetime
    close_staking_time: datetime
    closed: bool = False

    @property
    def id(self) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_OID, f"round/{self.tournament}/{self.number}"))


@dataclass
class UploadSlot:
    """An upload URL handed out by ``submission_upload_auth``."""

    filename: str  # the name create_submission must quote back
    original_filename: str
    model_id: str
    tournament: int
    round_number: int
    issued_at: datetime
    check: UploadCheck | None = None  # set once a PUT succeeded


@dataclass
class UploadRecord:
    """A PUT received on an upload URL, accepted or refused."""

    id: int
    filename: str
    model_id: str | None
    status_code: int
    size: int
    sha256: str | None
    row_count: int | None
    received_at: datetime
    error: str | None = None
    query: str = ""  # the URL's query string as it arrived, byte for byte


@dataclass
class Submission:
    id: str
    model_id: str
    model_name: str
    tournament: int
    round_number: int
    trigger_id: str | None
    filename: str
    row_count: int | None
    sha256: str
    inserted_at: datetime
    source: str | None = None
    data_datestamp: int | None = None
    selected: bool = True


@dataclass
class DownloadRecord:
    id: int
    filename: str
    tournament: int
    round_number: int | None
    range_start: int
    bytes_expected: int
    total_size: int
    started_at: datetime
    bytes_sent: int = 0
    completed: bool = False
    status_code: int = 200
    finished_at: datetime | None = None
    query: str = ""  # the URL's query string as it arrived, byte for byte
