"""Fault injection, set at runtime through ``POST /_sandbox/faults``; ``injection.py`` applies it.

The JSON body (every key optional; a POST replaces the whole configuration, DELETE clears)::

    {
      "seed": 0,                              # seeds the random draws: same requests, same faults
      "operations": {                         # per operation: a GraphQL field name such as
        "create_submission": {                # "rounds" or "create_submission", "put" (upload
          "error_rate": 0.5,                  # PUTs), "download" (dataset GETs), or "*" (all)
          "error_status": 503,                # the 5xx status answered
          "drop_rate": 0.0,                   # close the connection without any answer
          "latency_ms": 200,                  # added before the operation runs
          "answer_delay_ms": 0,               # added after it ran, before its answer is sent
          "graphql_error_rate": 0.0,          # GraphQL only: HTTP 200 with {"errors": [...]}
          "graphql_error_message": "Internal server error",
          "graphql_error_code": null,         # sent as errors[0].extensions.code
          "graphql_error_after": false,       # the operation runs (a mutation takes effect),
                                              # then the error replaces its answer
          "redirects": 0,                     # answer N redirects before serving the request
          "redirect_status": 307,             # 301, 302, 303, 307 or 308
          "times": 2                          # stop injecting faults after this many
        }
      },
      "put_failure_rate": 0.0,                # PUTs answered 500 and not stored (still recorded)
      "bandwidth_bytes_per_s": null,          # throttle dataset downloads
      "cut_download_after_bytes": null,       # every download stops after N bytes (drop)
      "down_for_s": 0,                        # every Numerai call answers 503 for N seconds
      "numerai_fields_only": false            # the schema without the sandbox's own fields
    }

A specific operation's rule wins over ``"*"``; the GraphQL errors of a ``"*"`` rule touch
GraphQL requests only. The control API is never faulted. Faults are drawn from a
``random.Random(seed)`` in request order, so sequential tests are deterministic.

The GraphQL error is Numerai's own way of failing: HTTP 200 and ``{"errors": [{"message":
"Internal server error"}]}`` (numerai/numerapi#15, on ``submission_upload_auth``). A redirect
sends the client to ``/_redirect/{status}/{left}{path}`` with the query unchanged, which
serves the original request once ``left`` reaches 0 (as a storage service or CDN redirects).
``numerai_fields_only`` answers with the schema of what the references show (see
``schema.py``): a query naming a field only the sandbox has fails as on a Numerai
without it.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class OperationFaults(BaseModel):
    model_config = ConfigDict(extra="forbid")

    error_rate: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    error_status: Annotated[int, Field(ge=500, le=599)] = 503
    drop_rate: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    latency_ms: Annotated[float, Field(ge=0.0)] = 0.0
    # The operation takes effect, then its answer is held back: a client that dies meanwhile
    # never learns the outcome (e.g. a submission created whose id was never received).
    answer_delay_ms: Annotated[float, Field(ge=0.0)] = 0.0
    graphql_error_rate: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    graphql_error_message: Annotated[str, Field(min_length=1)] = "Internal server error"
    graphql_error_code: str | None = None
    graphql_error_after: bool = False
    redirects: Annotated[int, Field(ge=0, le=100)] = 0
    redirect_status: Literal[301, 302, 303, 307, 308] = 307
    times: Annotated[int | None, Field(ge=0)] = None


class FaultConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    operations: dict[str, OperationFaults] = Field(default_factory=dict)
    put_failure_rate: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    bandwidth_bytes_per_s: Annotated[int | None, Field(gt=0)] = None
    cut_download_after_bytes: Annotated[int | None, Field(ge=0)] = None
    down_for_s: Annotated[float, Field(ge=0.0)] = 0.0
    numerai_fields_only: bool = False


@dataclass(frozen=True)
class Decision:
    latency_s: float = 0.0
    action: str | None = None  # "error", "drop", "down", "graphql_error" or "redirect"
    status: int = 503
    operation: str | None = None
    answer_delay_s: float = 0.0
    rule: OperationFaults | None = None


class FaultState:
    """The current fault configuration, its random stream and the faults it injected."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.config = FaultConfig()
        self._rng = random.Random(0)
        self._down_until = 0.0
        self._used: dict[str, int] = {}
        self.injected: list[dict[str, Any]] = []

    def set(self, config: FaultConfig) -> None:
        with self._lock:
            self.config = config
            self._rng = random.Random(config.seed)
            self._down_until = time.monotonic() + config.down_for_s if config.down_for_s else 0.0
            self._used = {}

    def clear(self) -> None:
        self.set(FaultConfig())

    def view(self) -> dict[str, Any]:
        with self._lock:
            left = max(0.0, self._down_until - time.monotonic())
            return {"config": self.config.model_dump(), "down_for_s_left": round(left, 3),
                    "injected": list(self.injected)}

    def _record(self, operation: str, kind: str) -> None:
        self.injected.append({"operation": operation, "kind": kind,
                              "at": datetime.now(UTC).isoformat()})

    def decide(self, operations: list[str], *, graphql: bool = False) -> Decision:
        """What to do with a request touching these operations (in order of preference);
        ``graphql``: whether it is a GraphQL request (the only kind GraphQL errors touch)."""
        with self._lock:
            if self._down_until and time.monotonic() < self._down_until:
                self._record(operations[0] if operations else "?", "down")
                return Decision(action="down", status=503)
            rules = self.config.operations
            name = next((op for op in operations if op in rules), "*")
            rule = rules.get(name)
            if rule is None:
                return Decision()
            label = operations[0] if name == "*" and operations else name
            latency = rule.latency_ms / 1000.0
            delay = rule.answer_delay_ms / 1000.0
            if rule.times is not None and self._used.get(name, 0) >= rule.times:
                return Decision(latency_s=latency, answer_delay_s=delay)
            action = None
            if rule.drop_rate and self._rng.random() < rule.drop_rate:
                action = "drop"
            elif rule.error_rate and self._rng.random() < rule.error_rate:
                action = "error"
            elif (graphql and rule.graphql_error_rate
                  and self._rng.random() < rule.graphql_error_rate):
                action = "graphql_error"
            elif rule.redirects:
                action = "redirect"
            if action is not None:
                self._used[name] = self._used.get(name, 0) + 1
                self._record(label, action)
            return Decision(latency, action, rule.error_status, label, delay, rule)

    def numerai_fields_only(self) -> bool:
        """Whether GraphQL answers with the schema of the references' fields only."""
        with self._lock:
            return self.config.numerai_fields_only

    def put_fails(self) -> bool:
        with self._lock:
            rate = self.config.put_failure_rate
            failed = bool(rate) and self._rng.random() < rate
            if failed:
                self._record("put", "put_failure")
            return failed

    def download_limits(self) -> tuple[int | None, int | None]:
        """(bytes per second, cut after bytes) for the next download."""
        with self._lock:
            return self.config.bandwidth_bytes_per_s, self.config.cut_download_after_bytes

    def note_cut(self) -> None:
        with self._lock:
            self._record("download", "cut")
