"""The async Numerai client: one instance serves every model of an account at once.

Everything it needs is passed in (httpx client, API URL, keys; or the `[numerai]` table
whole); it reads no environment variables and keeps no state between calls, so concurrent
calls for many models are safe.

    async with httpx.AsyncClient() as http:
        numerai = NumeraiClient(http, "https://api-tournament.numer.ai", public_id, secret_key)
        numerai = NumeraiClient.from_settings(http, config.numerai)   # the same, configured
        round_ = await numerai.current_round(Tournament.CLASSIC)

The account's operations (models, submissions, webhooks) are in ``account.py``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from numerai_autopilot.numerai import queries
from numerai_autopilot.numerai.account import AccountOperations
from numerai_autopilot.numerai.download import Progress, download_file
from numerai_autopilot.numerai.errors import NotFoundError, TransientError, UploadError, safe_url
from numerai_autopilot.numerai.graphql import GraphQL
from numerai_autopilot.numerai.results import (
    DownloadResult,
    RoundInfo,
    Tournament,
    UploadTarget,
    tournament_of,
)
from numerai_autopilot.numerai.retry import Budget, Clock, RetryPolicy, retry_call
from numerai_autopilot.numerai.upload import put_presigned

if TYPE_CHECKING:  # not at run time: Dask workers unpickle this package's errors
    from numerai_autopilot.config import NumeraiSettings


log = logging.getLogger(__name__)
# Frozen, so one shared default instance is safe.
_DEFAULT_RETRY = RetryPolicy()


class NumeraiClient(AccountOperations):
    """Numerai's GraphQL API, its presigned file URLs, and uploads; with retries.

    Every method takes a keyword ``deadline`` (an absolute ``time.time()``): no retry
    starts and no request waits past it, nor past ``retry.deadline_s`` from the call's
    start. Each HTTP request is also limited by ``timeout`` seconds. Errors are the
    NumeraiError tree of ``errors.py``; their messages never hold the keys.

    :param http: the httpx client every request goes through (the caller owns and closes it).
    :param api_url: Numerai's GraphQL endpoint (or the sandbox's).
    :param public_id: the account's API key id; with ``secret_key``, needed by the account's
        operations (models, submissions, uploads, webhooks), not by rounds and data.
    :param retry: how transient failures are retried.
    :param timeout: seconds per HTTP request (> 0; ValueError otherwise).
    :param clock: time sources, replaced only by tests of the retry arithmetic.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        api_url: str,
        public_id: str | None = None,
        secret_key: str | None = None,
        retry: RetryPolicy = _DEFAULT_RETRY,
        timeout: float = 30.0,
        *,
        clock: Clock | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        self._http = http
        self._api_url = api_url
        self.retry = retry
        self.timeout = timeout
        self._clock = clock or Clock()
        self._gql = GraphQL(
            http, api_url, public_id, secret_key, retry=retry, timeout=timeout, clock=self._clock
        )

    @classmethod
    def from_settings(
        cls,
        http: httpx.AsyncClient,
        settings: NumeraiSettings,
        retry: RetryPolicy = _DEFAULT_RETRY,
    ) -> NumeraiClient:
        """A client for the account of the `[numerai]` table: its API URL, keys and timeout.

        Commands keep the default, short ``retry``; the server passes a longer one (its
        runs pass the round's close as their deadline).
        """
        return cls(
            http,
            api_url=settings.api_url,
            public_id=settings.public_id.get_secret_value() if settings.public_id else None,
            secret_key=settings.secret_key.get_secret_value() if settings.secret_key else None,
            retry=retry,
            timeout=settings.timeout,
        )

    def __repr__(self) -> str:
        keys = "with keys" if self._gql.has_keys else "without keys"
        return f"NumeraiClient({safe_url(self._api_url)!r}, {keys})"

    # -- rounds and data ------------------------------------------------------------------

    async def current_round(
        self, tournament: int = Tournament.CLASSIC, *, deadline: float | None = None
    ) -> RoundInfo:
        """The tournament's current round; NotFoundError when none is open."""
        t = tournament_of(tournament)
        rounds = await self._gql.call(
            "rounds", queries.CURRENT_ROUND, {"tournament": int(t)}, deadline=deadline
        )
        if not rounds or rounds[0] is None:
            raise NotFoundError("rounds", f"no current round for tournament {int(t)}")
        return RoundInfo.from_json(rounds[0], t)

    async def list_datasets(
        self,
        tournament: int = Tournament.CLASSIC,
        round: int | None = None,
        *,
        deadline: float | None = None,
    ) -> list[str]:
        """File names available for the round (the current one when ``round`` is None)."""
        variables = {"round": round, "tournament": int(tournament_of(tournament))}
        names = await self._gql.call(
            "listDatasets", queries.LIST_DATASETS, variables, deadline=deadline
        )
        return [str(name) for name in names or []]

    async def dataset_url(
        self,
        filename: str,
        tournament: int = Tournament.CLASSIC,
        round: int | None = None,
        *,
        deadline: float | None = None,
    ) -> str:
        """A presigned GET URL for ``filename``; it expires, so fetch it right before use."""
        variables = {
            "filename": filename,
            "round": round,
            "tournament": int(tournament_of(tournament)),
        }
        url = await self._gql.call("dataset", queries.DATASET, variables, deadline=deadline)
        if not url:
            raise NotFoundError("dataset", f"no file named {filename!r}")
        return str(url)

    async def download(
        self,
        filename: str,
        dest: Path,
        tournament: int = Tournament.CLASSIC,
        round: int | None = None,
        progress: Progress | None = None,
        *,
        deadline: float | None = None,
    ) -> DownloadResult:
        """Streams ``filename`` to ``dest`` (atomically, resumably; see ``download.py``)."""

        async def get_url(url_deadline: float | None) -> str:
            return await self.dataset_url(filename, tournament, round, deadline=url_deadline)

        return await download_file(
            self._http,
            get_url,
            Path(dest),
            name=filename,
            policy=self.retry,
            deadline=deadline,
            timeout=self.timeout,
            progress=progress,
            clock=self._clock,
        )

    # -- submissions ----------------------------------------------------------------------

    async def upload_auth(
        self, model_id: str, filename: str, tournament: int, *, deadline: float | None = None
    ) -> UploadTarget:
        """Asks where to PUT a submission file (Signals has its own operation)."""
        t = tournament_of(tournament)
        operation, query = (
            ("submissionUploadSignalsAuth", queries.SIGNALS_UPLOAD_AUTH)
            if t is Tournament.SIGNALS
            else ("submission_upload_auth", queries.UPLOAD_AUTH)
        )
        variables = {
            "filename": os.path.basename(filename),
            "tournament": int(t),
            "modelId": model_id,
        }
        raw = await self._gql.call(operation, query, variables, auth=True, deadline=deadline)
        if not raw or not raw.get("url") or not raw.get("filename"):
            raise TransientError(f"Numerai {operation}: the answer has no upload URL")
        return UploadTarget(filename=str(raw["filename"]), url=str(raw["url"]))

    async def put_file(self, url: str, data: bytes, *, deadline: float | None = None) -> None:
        """PUTs ``data`` to a presigned upload URL, checking the answer.

        Raises UploadError whenever the file did not arrive: refused at once (4xx, or a
        redirect, which is not followed), or still failing (5xx, dropped connections) at the
        deadline, then with ``retryable=True``.
        """
        await put_presigned(
            self._http,
            url,
            data,
            policy=self.retry,
            deadline=deadline,
            timeout=self.timeout,
            clock=self._clock,
            redact=self._gql.redact,
        )

    async def create_submission(
        self,
        model_id: str,
        filename: str,
        tournament: int,
        trigger_id: str | None,
        *,
        deadline: float | None = None,
    ) -> str:
        """Creates the submission of an uploaded file; returns its id.

        ``filename`` is the one ``upload_auth`` returned; ``trigger_id`` the webhook's, so
        Numerai ties the submission to its trigger. A try that fails transiently may still
        have been applied (its answer lost, or an internal error after the write), so before
        each new try the model's submissions are listed (retried until they answer); if the
        trigger id (without one: the file) is there, that submission is the answer. So this
        call submits one trigger id once.

        :raises DeadlineExceeded: no answer before the deadline, or the submissions could not
            be listed in time to tell whether a failed try took effect (nothing is resent).
        """
        t = tournament_of(tournament)
        variables: dict[str, Any] = {
            "filename": filename,
            "modelId": model_id,
            "triggerId": trigger_id,
        }
        if t is Tournament.SIGNALS:
            operation, query = "createSignalsSubmission", queries.CREATE_SIGNALS_SUBMISSION
        else:
            operation, query = "create_submission", queries.CREATE_SUBMISSION
            variables["tournament"] = int(t)

        async def attempt(remaining: float) -> str:
            raw = await self._gql.once(operation, query, variables, auth=True, remaining=remaining)
            if not raw or not raw.get("id"):
                raise TransientError(f"Numerai {operation}: the answer has no submission id")
            return str(raw["id"])

        async def already_created(_: TransientError, remaining: float) -> str | None:
            return await self.created_submission(
                model_id, filename, trigger_id, deadline=self._clock.wall() + remaining
            )

        return await retry_call(
            attempt,
            what=f"Numerai {operation}",
            policy=self.retry,
            deadline=deadline,
            clock=self._clock,
            before_retry=already_created,
        )

    async def upload_predictions(
        self,
        model_id: str,
        data: bytes,
        filename: str,
        tournament: int,
        trigger_id: str | None,
        *,
        deadline: float | None = None,
        target: UploadTarget | None = None,
    ) -> str:
        """upload_auth -> put_file -> create_submission; returns the submission id.

        A failed PUT raises UploadError and the submission is never created. The three
        steps share one time budget. ``target``: an upload URL asked for earlier (while the
        model predicted); if its PUT is refused (expired, say), a fresh one is asked for.
        """
        budget = Budget(self.retry, deadline, self._clock)
        if target is not None:
            try:
                await self.put_file(target.url, data, deadline=budget.wall_deadline())
            except UploadError as exc:
                if exc.retryable:
                    raise
                log.info("the upload URL asked for earlier was refused (%s); asking again", exc)
                target = None
        if target is None:
            target = await self.upload_auth(
                model_id, filename, tournament, deadline=budget.wall_deadline()
            )
            await self.put_file(target.url, data, deadline=budget.wall_deadline())
        return await self.create_submission(
            model_id, target.filename, tournament, trigger_id, deadline=budget.wall_deadline()
        )
