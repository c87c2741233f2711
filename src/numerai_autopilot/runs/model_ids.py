"""The configured models on Numerai's side: each one's model id, and the run recorded for it.

A model's id comes from its `model_id` in the config, or, for a model configured by name
only, from the account's list of models. `ModelIds` is the one place that resolves names
to ids; `new_run` is the one place that turns a model's config into a run to record.

    ids = ModelIds(config.models, config.source)
    await ids.resolve(client)          # asks the account only for names lacking an id
    run = new_run(config.model("alpha"), ids.id_of("alpha"), source="manual", round_number=512)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from datetime import datetime

from numerai_autopilot.config import ModelConfig
from numerai_autopilot.errors import ConfigError
from numerai_autopilot.ledger import NewRun, RunSource, own_trigger_id
from numerai_autopilot.numerai import ModelInfo, NumeraiClient

log = logging.getLogger(__name__)


class ModelIds:
    """Model name -> Numerai model id, and id -> the model's config.

    `models` are the configured models by name; `source` is the config file, named in
    every error. Ids the config gives are taken as they are; `checked` verifies them.
    """

    def __init__(self, models: Mapping[str, ModelConfig], source: str) -> None:
        self.models = dict(models)
        self._source = source
        self._ids = {name: m.model_id for name, m in self.models.items() if m.model_id}
        self._by_id = {m.model_id: m for m in self.models.values() if m.model_id}
        self._resolving = asyncio.Lock()

    @property
    def missing(self) -> list[str]:
        """The names of models whose id is not known yet (configured by name only)."""
        return [name for name in self.models if name not in self._ids]

    def get(self, name: str) -> str | None:
        """The model's id, or None while it is not known."""
        return self._ids.get(name)

    def id_of(self, name: str) -> str:
        """The model's id; ConfigError when it is not known yet (call `resolve` first)."""
        model_id = self._ids.get(name)
        if model_id is None:
            raise ConfigError(
                f"{self._source}: models.{name}: no model id yet (Numerai's account could not "
                f"be asked for it); set models.{name}.model_id or try again"
            )
        return model_id

    def find(self, name: str, account: Iterable[ModelInfo]) -> ModelInfo | None:
        """The account's model that configured model `name` stands for: the one with its
        `model_id`, or for a model configured by name only, the one with its name."""
        model_id = self.models[name].model_id
        for info in account:
            if (info.id == model_id) if model_id else (info.name == name):
                return info
        return None

    async def resolve(self, client: NumeraiClient, *, deadline: float | None = None) -> None:
        """Learn the ids of the models configured by name only, from the account.

        Asks Numerai nothing when every id is known, and once at a time however many ask.
        Raises ConfigError naming every model the account does not have (the others are
        learnt all the same), or the client's error when the account cannot be read.
        """
        async with self._resolving:
            if not self.missing:
                return
            account = await client.models(deadline=deadline)
            found, problems = self._match(self.missing, account)
            for name, model_id in found.items():
                self._ids[name] = model_id
                self._by_id[model_id] = self.models[name]
            if problems:
                raise ConfigError("\n".join(problems))

    async def model_for_id(self, model_id: str, client: NumeraiClient) -> ModelConfig | None:
        """The configured model with this id, or None. While models configured by name only
        are unresolved, the account is asked once more first (best effort, within 10 s: None
        if that fails), so a webhook for such a model is not refused."""
        model = self._by_id.get(model_id)
        if model is None and self.missing:
            try:
                await asyncio.wait_for(self.resolve(client), timeout=10.0)
            except Exception as exc:  # noqa: BLE001  (best effort: the caller answers 404)
                log.warning("resolving model ids by name failed: %s", exc)
            model = self._by_id.get(model_id)
        return model

    async def checked(self, client: NumeraiClient, *, only: str | None = None) -> dict[str, str]:
        """Model name -> id for every configured model (or only `only`), each found on the
        account, configured ids included, so nothing is registered for a model that is not
        there. Raises ConfigError naming every model the account does not have."""
        account = await client.models()
        ids, problems = self._match([n for n in self.models if only in (None, n)], account)
        if problems:
            raise ConfigError("\n".join(problems))
        return ids

    def _match(
        self, names: list[str], account: list[ModelInfo]
    ) -> tuple[dict[str, str], list[str]]:
        """Name -> id of each of `names` found on the account, and an error for each other."""
        ids: dict[str, str] = {}
        problems = []
        known = ", ".join(sorted(m.name for m in account)) or "none"
        for name in names:
            found = self.find(name, account)
            if found is not None:
                ids[name] = found.id
                continue
            model_id = self.models[name].model_id
            wanted = f"model_id {model_id}" if model_id else f"name {name!r}"
            fix = (f"fix models.{name}.model_id" if model_id
                   else f"set models.{name}.model_id or fix the name")
            problems.append(f"{self._source}: models.{name}: no model with {wanted} on this "
                            f"Numerai account (it has: {known}); {fix}")
        return ids, problems


def new_run(
    model: ModelConfig,
    model_id: str,
    *,
    source: RunSource,
    round_number: int | None,
    trigger_id: str | None = None,
    is_test: bool = False,
    close_time: datetime | None = None,
    resubmit: bool | None = None,
    webhook_body: str | None = None,
) -> NewRun:
    """The run to record for `model` (whose Numerai id is `model_id`).

    `trigger_id` is Numerai's, from its webhook; without one (a manual or watcher run, or a
    webhook body without a usable one) the run gets one of ours (`own_trigger_id`, from the
    round unless it is a test), which is never sent to Numerai. `round_number` None is the
    round current when the run arrives. `close_time` is the round's close when known (the
    run's deadline); `resubmit` defaults to the model's setting; `webhook_body` is the
    start of the webhook's body, kept for the record.

    >>> from numerai_autopilot.config import ModelConfig
    >>> alpha = ModelConfig(name="alpha", predictor="models.py:predict")
    >>> new_run(alpha, "m-1", source="watcher", round_number=512).trigger_id
    'watcher-round-512'
    """
    if trigger_id is None:
        trigger_id = own_trigger_id(source, None if is_test else round_number)
    return NewRun(
        model_name=model.name, model_id=model_id, tournament=model.tournament_id,
        round_number=round_number, trigger_id=trigger_id, data_version=model.data_version,
        is_test=is_test, source=source,
        resubmit=model.resubmit if resubmit is None else resubmit, close_time=close_time,
        webhook_body=webhook_body,
    )
