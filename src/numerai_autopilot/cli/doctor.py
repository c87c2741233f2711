"""`autopilot doctor`'s checks: one line each, `ok` or `FAIL` with what to fix.

Config, each environment (built from its current requirements), ledger (and its Litestream
replica, when set), keys (one authenticated call), every model id on the account, the webhooks
registered on Numerai against ours, each predictor loaded in a real worker, and whether each
tournament's round is open. Later checks that need an earlier one (keys) are skipped.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import httpx

from numerai_autopilot.cli.registration import check_webhook, redact, registered_webhooks
from numerai_autopilot.cli.shared import console
from numerai_autopilot.config import TOURNAMENT_NAMES, AppConfig
from numerai_autopilot.demo.examples import EXAMPLE_MODEL
from numerai_autopilot.errors import AutopilotError, ConfigError
from numerai_autopilot.executor import Executor, PredictorSpec, parse_predictor
from numerai_autopilot.ledger import Ledger
from numerai_autopilot.numerai import AuthenticationError, ModelInfo, NumeraiClient
from numerai_autopilot.runs import ModelIds
from numerai_autopilot.runtime import environment_workers


class Doctor:
    """Runs the checks in order and prints each result as it comes."""

    def __init__(self, config: AppConfig, base_url: str | None) -> None:
        self.config = config
        self.base_url = base_url
        self.ok = True

    def line(self, ok: bool, what: str, detail: str) -> None:
        self.ok &= ok
        mark = "[green]ok  [/]" if ok else "[red]FAIL[/]"
        console.print(f"{mark} {what}: ", end="", soft_wrap=True)
        console.print(detail, soft_wrap=True, markup=False)

    async def run(self) -> None:
        config = self.config
        names = ", ".join(config.models) or "none: add a [models.NAME] table"
        self.line(bool(config.models), "config", f"{config.source} (models: {names})")
        self._environments()
        secret = config.server.secret is not None
        self.line(secret, "server.secret",
                  "set" if secret else "missing; set AUTOPILOT_SECRET (webhook tokens need it)")
        await asyncio.to_thread(self._ledger)
        if config.ledger.replica:
            self._replica()
        async with httpx.AsyncClient() as http:
            client = NumeraiClient.from_settings(http, config.numerai)
            account = await self._keys(client)
            if account is not None:
                ids = self._model_ids(account)
                await self._webhooks(http, ids)
                await self._rounds(client)
        await self._predictors()

    def _environments(self) -> None:
        """Each `[environments.NAME]`: built from its current requirements, else the fix."""
        from numerai_autopilot.envs import check

        for name in self.config.environments:
            status = check(self.config, name)
            self.line(status.ready, f"environment {name}",
                      status.problem or f"ready (Python {status.python})")

    def _ledger(self) -> None:
        from sqlalchemy.engine import make_url

        url = make_url(self.config.ledger.url).render_as_string(hide_password=True)
        try:
            with Ledger.from_url(self.config.ledger.url) as ledger:
                ledger.ping()
        except AutopilotError as exc:
            self.line(False, "ledger", f"{url}: {exc}")
        else:
            self.line(True, "ledger", f"{url} reachable")

    def _replica(self) -> None:
        """`ledger.replica`: the ledger is a SQLite file and the litestream binary is here (a
        replica's contents are checked by `litestream restore` when the server starts)."""
        from numerai_autopilot.deploy.litestream import find_litestream, sqlite_path

        try:
            db = sqlite_path(self.config.ledger)
            binary = find_litestream()
        except ConfigError as exc:
            self.line(False, "ledger replica", str(exc))
        else:
            self.line(True, "ledger replica", f"{db} -> {self.config.ledger.replica} "
                      f"(run the server as `autopilot litestream serve`; {binary})")

    async def _keys(self, client: NumeraiClient) -> list[ModelInfo] | None:
        keys = self.config.numerai
        if keys.public_id is None or keys.secret_key is None:
            self.line(False, "keys", "missing; export NUMERAI_PUBLIC_ID and NUMERAI_SECRET_KEY")
            return None
        try:
            account = await client.models()
        except AuthenticationError as exc:  # its message says which variables to set
            self.line(False, "keys", str(exc))
            return None
        except AutopilotError as exc:
            self.line(False, "keys", f"could not ask Numerai ({keys.api_url}): {exc}")
            return None
        self.line(True, "keys", f"valid; the account has {len(account)} models")
        return account

    def _model_ids(self, account: list[ModelInfo]) -> dict[str, str]:
        """Each configured model found on the account (one line each): name -> id."""
        model_ids = ModelIds(self.config.models, self.config.source)
        ids: dict[str, str] = {}
        for name, model in self.config.models.items():
            found = model_ids.find(name, account)
            if found is None:
                self.line(False, f"model {name}", _not_found(name, model.model_id, account))
            elif found.tournament != model.tournament_id:
                actual = TOURNAMENT_NAMES.get(found.tournament)
                self.line(False, f"model {name}", f"{found.id} is a {actual} model; set "
                          f"models.{name}.tournament = \"{actual}\"")
            else:
                ids[name] = found.id
                self.line(True, f"model {name}", f"{found.id} ({model.tournament})")
        return ids

    async def _webhooks(self, http: httpx.AsyncClient, ids: dict[str, str]) -> None:
        if self.config.server.secret is None or not ids:
            return
        registered = await registered_webhooks(self.config.numerai, http)
        if registered is None:
            console.print("  -  webhooks: Numerai does not show registered webhooks; check one "
                          "with `autopilot trigger MODEL --wait`")
            return
        secrets = self.config.server.webhook_secrets()
        fix = f"run `autopilot register --base-url {self.base_url or 'URL'}`"
        for name, model_id in ids.items():
            url = registered.get(model_id)
            problem = check_webhook(url, model_id, secrets, self.base_url)
            self.line(problem is None, f"webhook {name}",
                      redact(url) if problem is None else f"{problem}; {fix}")

    async def _rounds(self, client: NumeraiClient) -> None:
        for tournament in sorted({m.tournament_id for m in self.config.models.values()}):
            what = f"round ({TOURNAMENT_NAMES[tournament]})"
            try:
                info = await client.current_round(tournament=tournament)
            except AutopilotError as exc:
                self.line(False, what, f"cannot read the current round: {exc}")
                continue
            now = datetime.now(UTC)
            if info.close_time is not None and info.close_time > now:
                self.line(True, what, f"{info.number} open until {info.close_time:%Y-%m-%d %H:%M} UTC")
            else:
                self.line(True, what, f"{info.number} closed; the next round fires the webhooks")

    async def _predictors(self) -> None:
        specs: dict[str, PredictorSpec] = {}
        for name, model in self.config.models.items():
            if model.predictor is None:  # a blend: its members' predictions, no code
                members = ", ".join(f"{m} {w:g}" for m, w in (model.blend or {}).items())
                self.line(True, f"blend {name}", f"of {members}")
                continue
            try:
                specs[name] = parse_predictor(model.predictor, base_dir=self.config.base_dir,
                                              pickle_dirs=self.config.executor.pickle_dirs)
            except ConfigError as exc:
                self.line(False, f"predictor {name}", f"{exc}; fix models.{name}.predictor")
        if not specs:
            return
        # One worker is enough to load each predictor once.
        one_worker = self.config.executor.model_copy(update={"workers": 1, "threads_per_worker": 1})
        with tempfile.TemporaryDirectory(prefix="autopilot-doctor-") as scratch:
            async with Executor(one_worker, local_directory=Path(scratch),
                                environments=environment_workers(self.config)) as executor:
                for name, spec in specs.items():
                    try:
                        await executor.inspect(spec, model_name=name, timeout_s=120.0,
                                               environment=self.config.models[name].environment)
                    except AutopilotError as exc:  # "model 'NAME': ...": the line names it
                        self.line(False, f"predictor {name}",
                                  str(exc).removeprefix(f"model {name!r}: "))
                    else:
                        self.line(True, f"predictor {name}", f"{spec.ref} loads in a worker")


def _not_found(name: str, model_id: str | None, account: list[ModelInfo]) -> str:
    """What to fix when the account has no model `name` (or `model_id`): the table's name,
    which `autopilot init` sets to its example's, or the id."""
    known = ", ".join(sorted(m.name for m in account)) or "none"
    if model_id:
        return (f"no model with id {model_id} on this account (it has: {known}); fix "
                f"models.{name}.model_id")
    if name == EXAMPLE_MODEL:
        return (f"'{name}' is `autopilot init`'s example name; rename [models.{name}] in the "
                f"config to your model's name on Numerai (this account has: {known})")
    return (f"no model named {name!r} on this account (it has: {known}); rename "
            f"[models.{name}] to the model's name on Numerai, or set models.{name}.model_id")
