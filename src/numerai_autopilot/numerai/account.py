"""The account's side of Numerai's API: its models, their submissions, their compute webhooks.

``AccountOperations`` is part of ``NumeraiClient`` (``client.py``); every operation here
needs the API keys.

    models = await numerai.models(tournament=Tournament.CLASSIC)
    past = await numerai.submissions(models[0].id)
"""

from __future__ import annotations

import logging

from numerai_autopilot.numerai import queries
from numerai_autopilot.numerai.errors import DeadlineExceeded, GraphQLError, NumeraiError
from numerai_autopilot.numerai.graphql import GraphQL
from numerai_autopilot.numerai.results import ModelInfo, SubmissionInfo, tournament_of

log = logging.getLogger(__name__)


class AccountOperations:
    """The account's operations, sharing the client's GraphQL caller (``_gql``).

    Every method takes a keyword ``deadline`` (an absolute ``time.time()``), as all of
    ``NumeraiClient``'s do.
    """

    _gql: GraphQL

    async def models(
        self, *, tournament: int | None = None, deadline: float | None = None
    ) -> list[ModelInfo]:
        """The account's models, optionally only those of one tournament."""
        account = await self._gql.call("account", queries.MODELS, {}, auth=True, deadline=deadline)
        models = [ModelInfo.from_json(raw) for raw in (account or {}).get("models") or []]
        if tournament is not None:
            models = [m for m in models if m.tournament == int(tournament_of(tournament))]
        return models

    async def submissions(
        self, model_id: str, *, deadline: float | None = None
    ) -> list[SubmissionInfo]:
        """The model's past submissions, as Numerai lists them."""
        raw = await self._gql.call(
            "submissions",
            queries.SUBMISSIONS,
            {"modelId": model_id},
            auth=True,
            deadline=deadline,
        )
        return [SubmissionInfo.from_json(item) for item in raw or []]

    async def submission_webhooks(
        self, *, deadline: float | None = None
    ) -> dict[str, str | None] | None:
        """Model id -> the compute webhook registered for it (None: none), for every model
        of the account; None when the API does not answer the field.

        No reference reads ``submissionWebhook`` (numerapi and numerai-cli only set it with
        ``setSubmissionWebhook``), so a caller must cope with not knowing what is registered.
        """
        try:
            account = await self._gql.call(
                "account", queries.SUBMISSION_WEBHOOKS, {}, auth=True, deadline=deadline
            )
        except NumeraiError as exc:
            if "submissionWebhook" in str(exc):  # the field is unknown to this API
                return None
            raise
        return {
            str(raw["id"]): raw.get("submissionWebhook") or None
            for raw in (account or {}).get("models") or []
        }

    async def set_submission_webhook(
        self, model_id: str, url: str | None, *, deadline: float | None = None
    ) -> bool:
        """Registers the model's compute webhook; ``None`` clears it. True when accepted."""
        variables = {"modelId": model_id, "newSubmissionWebhook": url}
        result = await self._gql.call(
            "setSubmissionWebhook",
            queries.SET_SUBMISSION_WEBHOOK,
            variables,
            auth=True,
            deadline=deadline,
        )
        # numerapi compares the answer with the string "true" (base_api.py).
        return result is True or str(result).lower() == "true"

    async def trigger_model_webhook(self, model_id: str, *, deadline: float | None = None) -> str:
        """Asks Numerai to POST the model's webhook as a test; returns the new trigger id.

        Retried like the rest: a lost answer may mean two test webhooks, which is harmless
        because each carries its own trigger id.
        """
        trigger_id = await self._gql.call(
            "triggerModelWebhook",
            queries.TRIGGER_MODEL_WEBHOOK,
            {"modelId": model_id},
            auth=True,
            deadline=deadline,
        )
        if not trigger_id:
            raise GraphQLError("triggerModelWebhook", "Numerai returned no trigger id")
        return str(trigger_id)

    async def created_submission(
        self, model_id: str, filename: str, trigger_id: str | None, *, deadline: float
    ) -> str | None:
        """The id of the submission made by a create_submission whose outcome is unknown (its
        answer lost, or an error on Numerai's side), or None when Numerai lists none: the
        one with this trigger id (or, without one, this file).

        The listing is retried until it answers, because "cannot tell" must not be taken
        for "not created": a create sent again after one that was applied submits the
        trigger twice.

        :raises DeadlineExceeded: Numerai did not list the submissions before ``deadline``.
        """
        try:
            listed = await self.submissions(model_id, deadline=deadline)
        except DeadlineExceeded as exc:
            raise DeadlineExceeded(
                "Numerai create_submission: a try failed without telling whether it took "
                f"effect, and the submissions to find out could not be listed ({exc}); not "
                "sending it again",
                exc.last_error,
            ) from exc
        for sub in listed:
            same_trigger = trigger_id is not None and sub.trigger_id == trigger_id
            if same_trigger or (trigger_id is None and sub.filename == filename):
                log.info("create_submission: the lost answer had created %s", sub.id)
                return sub.id
        return None
