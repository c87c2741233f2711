"""The ledger's values: what goes in (NewRun, Change) and what comes out (Run, StageRecord,
LogLine), and the trigger ids of runs Numerai did not trigger.

A run's trigger id is Numerai's (from its webhook) or ours (`own_trigger_id`: a run started
by a person or by the round watcher, a dry run, or a webhook whose body carried no usable
trigger id).
Only Numerai's goes back to Numerai with the submission (`Run.numerai_trigger_id`): Numerai
matches it against the triggers it sent.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

from numerai_autopilot.errors import LedgerError
from numerai_autopilot.ledger.states import RunState

# "dry-run": `autopilot run --dry-run`, which writes the validated CSV instead of uploading;
# such a run is no round's run (it neither skips nor is skipped by the round's others).
RunSource = Literal["webhook", "manual", "watcher", "rerun", "dry-run"]
SOURCES: Final[frozenset[str]] = frozenset({"webhook", "manual", "watcher", "rerun", "dry-run"})
# The sources whose runs carry a trigger id of ours (`own_trigger_id`), never sent to Numerai.
OWN_TRIGGER_SOURCES: Final[frozenset[str]] = frozenset({"manual", "watcher", "dry-run"})
LOG_LEVELS: Final[frozenset[str]] = frozenset({"debug", "info", "warning", "error"})
# How our trigger ids begin. Numerai's are UUIDs (hexadecimal digits and dashes), which never
# begin with one of these.
_OWN_PREFIXES: Final[tuple[str, ...]] = ("manual-", "watcher-", "webhook-", "dry-run-")


def own_trigger_id(source: RunSource, round_number: int | None = None) -> str:
    """A trigger id of ours, for a run Numerai gave none: a manual, dry or watcher run, or
    a webhook whose body had no usable `triggerId`.

    A manual or dry run gets a fresh one. The watcher's is derived from the round, so two watchers
    (two instances sharing the ledger) make the same id and record the run once. A webhook's
    is derived from the round when the body named one (so a delivery repeated gives back its
    run, as a repeated Numerai trigger id does), and fresh otherwise (the run is for the
    round current when it arrived). Raises ValueError for a "rerun" or a watcher run without
    a round.

    >>> own_trigger_id("watcher", 512)
    'watcher-round-512'
    >>> own_trigger_id("webhook", 512)
    'webhook-round-512'
    >>> own_trigger_id("manual").startswith("manual-")
    True
    """
    if source in ("manual", "dry-run"):
        return f"{source}-{uuid.uuid4()}"
    if source == "webhook":
        return (f"webhook-{uuid.uuid4()}" if round_number is None
                else f"webhook-round-{round_number}")
    if source != "watcher":
        raise ValueError(f"a {source} run keeps the trigger id of the run it repeats; pass it")
    if round_number is None:
        raise ValueError("a watcher run's trigger id needs its round number")
    return f"watcher-round-{round_number}"


def is_own_trigger_id(trigger_id: str) -> bool:
    """True for a trigger id made by `own_trigger_id`, never for one of Numerai's.

    >>> is_own_trigger_id("webhook-round-512"), is_own_trigger_id("99361e43-ab12-4cde")
    (True, False)
    """
    return trigger_id.startswith(_OWN_PREFIXES)


@dataclass(frozen=True, slots=True)
class NewRun:
    """A run to record: one Numerai trigger (or a manual / watcher / re-run start) for a model.

    `webhook_body` is the start of the body of the webhook that asked for it, as text (kept
    for the record; None for a run no webhook started).

    >>> NewRun("alpha", "m-1", tournament=8, round_number=512, trigger_id="t-1",
    ...        data_version="v5.0", is_test=False, source="webhook")  # doctest: +ELLIPSIS
    NewRun(model_name='alpha', ...)
    """

    model_name: str
    model_id: str
    tournament: int
    round_number: int | None
    trigger_id: str
    data_version: str
    is_test: bool
    source: str
    resubmit: bool = False
    close_time: datetime | None = None
    webhook_body: str | None = None

    def check(self) -> None:
        """Raise LedgerError naming the field when the run cannot be recorded."""
        for name in ("model_name", "model_id", "trigger_id"):
            if not getattr(self, name):
                raise LedgerError(f"run for model {self.model_name!r}: {name} is empty")
        if self.source not in SOURCES:
            raise LedgerError(
                f"run for model {self.model_name!r}: source {self.source!r} is not one of "
                f"{', '.join(sorted(SOURCES))}"
            )
        if self.close_time is not None and self.close_time.tzinfo is None:
            raise LedgerError(
                f"run for model {self.model_name!r}: close_time {self.close_time.isoformat()} "
                "has no timezone; pass an aware datetime such as datetime.now(UTC)"
            )


@dataclass(frozen=True, slots=True)
class Run:
    """One run as the ledger holds it. Datetimes are timezone-aware UTC.

    `round_number` is None for a test trigger, and for a run whose round is the one current
    when it arrived until the pipeline learns it; `webhook_body` is as in NewRun.
    """

    id: str
    model_name: str
    model_id: str
    tournament: int
    round_number: int | None
    trigger_id: str
    data_version: str
    is_test: bool
    source: str
    state: RunState
    attempts: int
    error: str | None
    submission_id: str | None
    created_at: datetime
    updated_at: datetime
    owner: str | None
    lease_until: datetime | None
    close_time: datetime | None
    detail: dict[str, Any] = field(default_factory=dict)
    resubmit: bool = False
    webhook_body: str | None = None

    @property
    def is_final(self) -> bool:
        return self.state.is_final

    @property
    def is_dry_run(self) -> bool:
        """A dry run (`autopilot run --dry-run`): it uploads nothing and is no round's run."""
        return self.source == "dry-run"

    @property
    def numerai_trigger_id(self) -> str | None:
        """The trigger id to send back to Numerai with the submission: Numerai's own (a
        webhook's), or None for a trigger id of ours (`own_trigger_id`)."""
        if self.source in OWN_TRIGGER_SOURCES or is_own_trigger_id(self.trigger_id):
            return None
        return self.trigger_id


@dataclass(frozen=True, slots=True)
class StageRecord:
    """One stage of one attempt: when the run entered ``state`` and when (and how) it left.

    ``outcome`` is the state the run moved to on leaving (``"predicting"``, ``"failed"``...),
    or ``"abandoned"`` when the process holding the run died and another one took it over.
    """

    state: RunState
    attempt: int
    started_at: datetime
    ended_at: datetime | None
    error: str | None
    outcome: str | None = None

    @property
    def duration_s(self) -> float | None:
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


@dataclass(frozen=True, slots=True)
class Change:
    """One state change for ``Ledger.advance_many``; the fields are ``Ledger.advance``'s."""

    run_id: str
    state: RunState
    owner: str | None = None
    error: str | None = None
    submission_id: str | None = None
    detail: dict[str, Any] | None = None
    log: tuple[str, str] | None = None
    via: RunState | None = None
    round_number: int | None = None
    # the run's validated CSV and its rows, kept with the change (`Ledger.predictions` reads it)
    predictions: tuple[bytes, int] | None = None


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line of a run's log; ``id`` increases, so ``logs(after_id=last.id)`` pages on."""

    id: int
    run_id: str
    at: datetime
    level: str
    message: str


def utcnow() -> datetime:
    return datetime.now(UTC)
