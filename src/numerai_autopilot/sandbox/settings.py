"""What a sandbox is made of: the account, its models, the data sizes, the limits.

Build one from CLI flags::

    SandboxSettings(data_dir=Path("sandbox-data"), public_id="PUB", secret_key="SECRET",
                    models=parse_models("alpha,beta,gamma,sigs:11"), seed=7)
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .webhooks import BodyShape, body_shape

CLASSIC, SIGNALS, CRYPTO = 8, 11, 12
TOURNAMENTS: dict[int, str] = {CLASSIC: "Classic", SIGNALS: "Signals", CRYPTO: "Crypto"}

# Fixed so a model keeps its id across restarts of the same account.
_MODEL_NAMESPACE = uuid.UUID("6f1c7d2e-3b7a-4f0e-9a55-2f8d1c0b5e11")

DEFAULT_PUBLIC_ID = "SANDBOXPUBLICIDXXXXXXXXXXXXXXXXX"
DEFAULT_SECRET_KEY = "sandbox-secret-key-change-me-0000000000000000000000000000000000"


@dataclass(frozen=True)
class ModelSpec:
    """A model of the sandbox account: its name and the tournament it plays."""

    name: str
    tournament: int = CLASSIC

    def model_id(self, public_id: str) -> str:
        """A stable UUID from the account's public id and the model name."""
        return str(uuid.uuid5(_MODEL_NAMESPACE, f"{public_id}/{self.name}"))


@dataclass(frozen=True)
class DataSizes:
    """How big the synthetic files are. The defaults look like Numerai's v5 files.

    ``small_features`` and ``medium_features`` size the feature sets in ``features.json``;
    ``informative_features`` (taken from the small set) carry the planted signal.
    """

    live_rows: int = 6_700
    n_features: int = 2_748
    small_features: int = 42
    medium_features: int = 780
    informative_features: int = 20
    n_targets: int = 6
    train_rows: int = 20_000
    train_eras: int = 40
    validation_rows: int = 5_000
    validation_eras: int = 10
    benchmark_models: int = 3
    signals_tickers: int = 5_000
    signals_features: int = 8
    crypto_symbols: int = 500

    def __post_init__(self) -> None:
        if not 0 < self.small_features <= self.medium_features <= self.n_features:
            raise ValueError(
                "data sizes: need 0 < small_features <= medium_features <= n_features, got "
                f"{self.small_features}, {self.medium_features}, {self.n_features}"
            )
        if not 0 < self.informative_features <= self.small_features:
            raise ValueError("data sizes: informative_features must be within the small set")
        for name in ("live_rows", "train_rows", "validation_rows", "train_eras",
                     "validation_eras", "n_targets", "signals_tickers", "crypto_symbols"):
            if getattr(self, name) < 1:
                raise ValueError(f"data sizes: {name} must be at least 1")


#: Small sizes for tests: everything generates in a fraction of a second.
TEST_SIZES = DataSizes(
    live_rows=500,
    n_features=60,
    small_features=12,
    medium_features=30,
    informative_features=8,
    n_targets=3,
    train_rows=3_000,
    train_eras=12,
    validation_rows=1_000,
    validation_eras=4,
    benchmark_models=2,
    signals_tickers=300,
    signals_features=4,
    crypto_symbols=150,
)


@dataclass(frozen=True)
class SandboxSettings:
    """Everything a sandbox needs; passed to :func:`create_app` and :func:`serve`.

    ``url_ttl_s`` is the life of a presigned URL; ``webhook_timeout_s`` bounds each webhook POST;
    ``webhook_body`` names the shape of webhook bodies (a ``webhooks.BodyShape``: "standard",
    "string_round", "cli_mock", ...; a model may be given its own through the control API);
    ``validate_submissions`` makes ``create_submission`` refuse files Numerai would refuse
    (wrong columns, missing live ids, values outside [0, 1]).
    """

    data_dir: Path
    public_id: str = DEFAULT_PUBLIC_ID
    secret_key: str = DEFAULT_SECRET_KEY
    models: tuple[ModelSpec, ...] = (ModelSpec("alpha"), ModelSpec("beta"), ModelSpec("gamma"))
    seed: int = 0
    data_versions: tuple[str, ...] = ("v5.3",)
    signals_version: str = "v2.1"
    crypto_version: str = "v2.0"
    sizes: DataSizes = field(default_factory=DataSizes)
    start_round: int = 1100
    url_ttl_s: float = 3600.0
    webhook_timeout_s: float = 10.0
    webhook_body: str = BodyShape.STANDARD.value
    validate_submissions: bool = True
    username: str = "sandbox_user"

    def __post_init__(self) -> None:
        if not self.public_id or not self.secret_key:
            raise ValueError("sandbox settings: public_id and secret_key must not be empty")
        if "$" in self.public_id:
            raise ValueError("sandbox settings: public_id must not contain '$'")
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ValueError(f"sandbox settings: duplicate model names in {names}")
        for model in self.models:
            if model.tournament not in TOURNAMENTS:
                raise ValueError(
                    f"sandbox settings: model {model.name!r} has tournament {model.tournament}; "
                    f"use one of {sorted(TOURNAMENTS)}"
                )
        if not self.data_versions:
            raise ValueError("sandbox settings: data_versions must name at least one version")
        body_shape(self.webhook_body)  # ValueError naming the known shapes

    def model_ids(self) -> dict[str, str]:
        """Model name -> model id."""
        return {m.name: m.model_id(self.public_id) for m in self.models}


def parse_models(text: str) -> tuple[ModelSpec, ...]:
    """Parse ``"alpha,beta,sigs:11"``: names, each optionally ``:tournament`` (default 8)."""
    specs: list[ModelSpec] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        name, _, tournament = part.partition(":")
        if not name:
            raise ValueError(f"--models: empty model name in {text!r}")
        try:
            specs.append(ModelSpec(name, int(tournament) if tournament else CLASSIC))
        except ValueError as exc:
            raise ValueError(
                f"--models: {part!r}: tournament must be 8, 11 or 12 (e.g. 'sigs:11')"
            ) from exc
    if not specs:
        raise ValueError("--models: name at least one model, e.g. 'alpha,beta'")
    return tuple(specs)
