"""The sandbox's state: account, models, rounds, uploads, submissions, downloads.

Plain Python, no HTTP: the GraphQL layer, the file endpoints and the control API all call
:class:`Sandbox`. A lock guards every change because tests read the state from another thread
than the server's event loop. Refusals raise :class:`SandboxError` with the message Numerai
would give; the GraphQL layer turns it into ``{"errors": [...]}``.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

from ..errors import AutopilotError
from .data import DataStore, tournament_of
from .entities import DownloadRecord, Model, Round, Submission, UploadRecord, UploadSlot
from .faults import FaultState
from .files import UrlSigner
from .settings import TOURNAMENTS, SandboxSettings
from .submissions import UploadCheck
from .webhooks import WebhookDelivery, WebhookDispatcher, body_shape, redact_url

ROUND_LENGTH = timedelta(hours=1)


class SandboxError(AutopilotError):
    """A request the sandbox refuses, as Numerai would; the message is Numerai-like."""


class Auth(str, Enum):
    OK = "ok"
    MISSING = "missing"
    INVALID = "invalid"


@dataclass
class Sandbox:
    """All state of one sandbox. Build with :meth:`create`, which generates the data."""

    settings: SandboxSettings
    data: DataStore
    signer: UrlSigner
    faults: FaultState
    webhooks: WebhookDispatcher
    models: dict[str, Model]
    rounds: dict[int, list[Round]]
    slots: dict[str, UploadSlot] = field(default_factory=dict)
    uploads: list[UploadRecord] = field(default_factory=list)
    submissions: list[Submission] = field(default_factory=list)
    downloads: list[DownloadRecord] = field(default_factory=list)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    lock: threading.RLock = field(default_factory=threading.RLock)

    @classmethod
    def create(cls, settings: SandboxSettings) -> Sandbox:
        data = DataStore(settings)
        data.ensure_static()
        now = datetime.now(UTC).replace(microsecond=0)
        rounds: dict[int, list[Round]] = {}
        for tournament in TOURNAMENTS:
            data.ensure_round(tournament, settings.start_round)
            rounds[tournament] = [_new_round(tournament, settings.start_round, now)]
        models = {
            spec.model_id(settings.public_id): Model(
                spec.model_id(settings.public_id), spec.name, spec.tournament
            )
            for spec in settings.models
        }
        return cls(
            settings=settings, data=data, signer=UrlSigner.random(settings.url_ttl_s),
            faults=FaultState(),
            webhooks=WebhookDispatcher(settings.webhook_timeout_s,
                                       body_shape(settings.webhook_body)),
            models=models, rounds=rounds,
        )

    # ---- auth -------------------------------------------------------------------------
    def check_auth(self, header: str | None) -> Auth:
        """``Authorization: Token PUBLIC$SECRET``, compared in constant time."""
        if not header:
            return Auth.MISSING
        scheme, _, token = header.strip().partition(" ")
        public_id, sep, secret = token.strip().partition("$")
        if scheme.lower() != "token" or not sep:
            return Auth.INVALID
        ok_public = hmac.compare_digest(public_id.encode(), self.settings.public_id.encode())
        ok_secret = hmac.compare_digest(secret.encode(), self.settings.secret_key.encode())
        return Auth.OK if ok_public and ok_secret else Auth.INVALID

    # ---- models -----------------------------------------------------------------------
    def model(self, model_id: str | None, tournament: int | None = None) -> Model:
        """The account's model with this id, checked against the tournament if given."""
        if not model_id:
            raise SandboxError("modelId is required: this account has more than one model")
        model = self.models.get(model_id.strip().lower())
        if model is None:
            raise SandboxError(f"Model not found: no model with id {model_id} in this account")
        if tournament is not None and model.tournament != tournament:
            raise SandboxError(
                f"Model {model.name} is a {TOURNAMENTS[model.tournament]} model "
                f"(tournament {model.tournament}), not tournament {tournament}"
            )
        return model

    def set_webhook(self, model_id: str | None, url: str | None) -> Model:
        model = self.model(model_id)
        if url is not None and not url.startswith(("http://", "https://")):
            raise SandboxError("Invalid webhook url: it must start with http:// or https://")
        with self.lock:
            model.webhook = url or None
        return model

    # ---- rounds -----------------------------------------------------------------------
    def _tournament(self, tournament: int | None) -> int:
        t = tournament or 8
        if t not in TOURNAMENTS:
            raise SandboxError(f"Tournament {t} not found: use 8 (Classic), 11 (Signals), 12 (Crypto)")
        return t

    def latest_round(self, tournament: int | None) -> Round:
        with self.lock:
            return self.rounds[self._tournament(tournament)][-1]

    def open_round_or_error(self, tournament: int | None) -> Round:
        current = self.latest_round(tournament)
        if current.closed:
            raise SandboxError("Current round not open for submissions")
        return current

    def find_round(self, tournament: int | None, number: int | None) -> Round:
        if not number:
            return self.latest_round(tournament)
        with self.lock:
            for rnd in self.rounds[self._tournament(tournament)]:
                if rnd.number == number:
                    return rnd
        raise SandboxError(f"Round {number} not found for tournament {self._tournament(tournament)}")

    def list_rounds(self, tournament: int | None, number: int | None,
                    limit: int | None) -> list[Round]:
        if number == 0:
            return [self.open_round_or_error(tournament)]
        with self.lock:
            rounds = list(reversed(self.rounds[self._tournament(tournament)]))
        if number is not None:
            rounds = [r for r in rounds if r.number == number]
        return rounds[:limit] if limit is not None else rounds

    def prepare_next_round(self, tournament: int) -> int:
        """Generate the next round's live files (slow part; call from a worker thread)."""
        number = self.latest_round(tournament).number + 1
        self.data.ensure_round(self._tournament(tournament), number)
        return number

    def open_round(
        self, tournament: int, length: timedelta = ROUND_LENGTH
    ) -> tuple[Round, list[Model]]:
        """Close the current round, open the next (for `length`); returns it and the models
        to notify. A short `length` lets tests watch a round close."""
        t = self._tournament(tournament)
        number = self.prepare_next_round(t)
        now = datetime.now(UTC).replace(microsecond=0)
        with self.lock:
            previous = self.rounds[t][-1]
            if not previous.closed:
                _close(previous, now)
            rnd = _new_round(t, max(number, previous.number + 1), now, length)
            self.rounds[t].append(rnd)
            notify = [m for m in self.models.values() if m.tournament == t and m.webhook]
        return rnd, notify

    def fire_round_open(self, rnd: Round, models: list[Model]) -> list[WebhookDelivery]:
        """POST each model's webhook with Numerai's round-open payload (in the background)."""
        return [
            self.webhooks.fire(
                model_id=m.id, model_name=m.name, url=m.webhook, kind="round_open",
                payload={"roundNumber": rnd.number, "dataVersion": 1,
                         "triggerId": str(uuid.uuid4())},
            )
            for m in models if m.webhook
        ]

    def fire_test(self, model_id: str | None) -> str:
        """triggerModelWebhook: a test POST to the model's webhook; returns the trigger id."""
        model = self.model(model_id)
        if not model.webhook:
            raise SandboxError(f"Model {model.name} has no submission webhook; set one with "
                               "setSubmissionWebhook first")
        trigger_id = str(uuid.uuid4())
        self.webhooks.fire(
            model_id=model.id, model_name=model.name, url=model.webhook, kind="test",
            payload={"roundNumber": "test", "dataVersion": 1, "triggerId": trigger_id,
                     "isTest": True},
        )
        return trigger_id

    def close_round(self, tournament: int) -> Round:
        with self.lock:
            rnd = self.rounds[self._tournament(tournament)][-1]
            if not rnd.closed:
                _close(rnd, datetime.now(UTC).replace(microsecond=0))
            return rnd

    # ---- datasets ---------------------------------------------------------------------
    def dataset_round(self, filename: str, tournament: int | None, round_number: int | None
                      ) -> tuple[int, int]:
        """Check a dataset name; returns (tournament, round number) it is served for."""
        file_tournament = tournament_of(filename)
        if tournament and tournament != file_tournament:
            raise SandboxError(f"Dataset not found: {filename} (tournament {tournament})")
        if filename not in self.data.filenames(file_tournament):
            raise SandboxError(f"Dataset not found: {filename}")
        return file_tournament, self.find_round(file_tournament, round_number).number

    # ---- uploads and submissions ------------------------------------------------------
    def issue_upload(self, model_id: str | None, filename: str, tournament: int) -> UploadSlot:
        model = self.model(model_id, tournament)
        rnd = self.open_round_or_error(tournament)
        base = filename.rsplit("/", 1)[-1]
        if not base.lower().endswith((".csv", ".parquet")):
            raise SandboxError(f"Invalid file type: {base}; submissions must be .csv or .parquet")
        key = f"{model.id}/{uuid.uuid4().hex}/{base}"
        slot = UploadSlot(key, base, model.id, tournament, rnd.number, datetime.now(UTC))
        with self.lock:
            self.slots[key] = slot
        return slot

    def record_upload(self, filename: str, body: bytes, status_code: int,
                      check: UploadCheck | None, error: str | None = None, *, query: str = ""
                      ) -> UploadRecord:
        slot = self.slots.get(filename)
        with self.lock:
            record = UploadRecord(
                id=len(self.uploads) + 1, filename=filename,
                model_id=slot.model_id if slot else None, status_code=status_code,
                size=len(body), sha256=hashlib.sha256(body).hexdigest() if body else None,
                row_count=check.row_count if check else None, received_at=datetime.now(UTC),
                error=error, query=query,
            )
            self.uploads.append(record)
            if slot is not None and check is not None and status_code == 200:
                slot.check = check
        return record

    def create_submission(self, *, filename: str, tournament: int, model_id: str | None,
                          trigger_id: str | None, source: str | None = None,
                          data_datestamp: int | None = None) -> Submission:
        model = self.model(model_id, tournament)
        slot = self.slots.get(filename)
        if slot is None or slot.model_id != model.id:
            raise SandboxError(
                f"Submission file not found: {filename}; ask submission_upload_auth for an "
                "upload URL and PUT the file there first"
            )
        if slot.check is None:
            raise SandboxError(
                f"Submission file not found: {filename} was never uploaded; PUT the file to "
                "the upload URL before creating the submission"
            )
        if self.settings.validate_submissions and slot.check.problem:
            raise SandboxError(f"Invalid submission: {slot.check.problem}")
        rnd = self.open_round_or_error(tournament)
        with self.lock:
            for old in self.submissions:
                if old.model_id == model.id and old.round_number == rnd.number \
                        and old.tournament == tournament:
                    old.selected = False
            sub = Submission(
                id=str(uuid.uuid4()), model_id=model.id, model_name=model.name,
                tournament=tournament, round_number=rnd.number, trigger_id=trigger_id or None,
                filename=filename, row_count=slot.check.row_count, sha256=slot.check.sha256,
                inserted_at=datetime.now(UTC), source=source, data_datestamp=data_datestamp,
            )
            self.submissions.append(sub)
        return sub

    def model_submissions(self, model_id: str | None) -> list[Submission]:
        with self.lock:
            if model_id is None:
                ids = set(self.models)
            else:
                ids = {self.model(model_id).id}
            return [s for s in reversed(self.submissions) if s.model_id in ids]

    # ---- downloads --------------------------------------------------------------------
    def start_download(self, filename: str, tournament: int, round_number: int | None,
                       range_start: int, expected: int, total: int, status: int, query: str = ""
                       ) -> DownloadRecord:
        with self.lock:
            record = DownloadRecord(
                id=len(self.downloads) + 1, filename=filename, tournament=tournament,
                round_number=round_number, range_start=range_start, bytes_expected=expected,
                total_size=total, started_at=datetime.now(UTC), status_code=status,
                query=query,
            )
            self.downloads.append(record)
        return record

    def finish_download(self, record: DownloadRecord, sent: int) -> None:
        with self.lock:
            record.bytes_sent = sent
            record.completed = sent == record.bytes_expected
            record.finished_at = datetime.now(UTC)

    # ---- views ------------------------------------------------------------------------
    def account_view(self) -> dict[str, Any]:
        return {
            "username": self.settings.username,
            "public_id": self.settings.public_id,
            "models": [
                {"id": m.id, "name": m.name, "tournament": m.tournament,
                 "webhook": redact_url(m.webhook) if m.webhook else None}
                for m in self.models.values()
            ],
        }


def _new_round(
    tournament: int, number: int, now: datetime, length: timedelta = ROUND_LENGTH
) -> Round:
    return Round(tournament, number, now, now + length, now + length)


def _close(rnd: Round, now: datetime) -> None:
    rnd.closed = True
    rnd.close_time = min(rnd.close_time, now)
    rnd.close_staking_time = min(rnd.close_staking_time, now)
