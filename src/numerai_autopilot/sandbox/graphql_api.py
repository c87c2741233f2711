"""Numerai's GraphQL API, the part a compute service and ``numerapi`` use.

The schema is written in SDL and executed by graphql-core. It is as strict as the references
show Numerai to be: operation and argument names and types follow what ``numerapi`` 3.1.1
and numerai-cli send (non-null where they send non-null), and nothing they do not show is
accepted, except the fields described as OWN (``numerai_fields_only`` removes those too);
the SDL is in ``schema.py``. Errors are answered as Numerai does: HTTP 200 with
``{"data": ..., "errors": [{"message", "locations", "path"}]}``.
"""

from __future__ import annotations

import functools
import inspect
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import graphql
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .entities import Model, Round, Submission
from .schema import REFERENCE_SCHEMA, SCHEMA
from .state import Auth, Sandbox, SandboxError

MISSING_AUTH = "You must be authenticated to perform this action: send an Authorization " \
               "header 'Token PUBLIC_ID$SECRET_KEY'"
INVALID_AUTH = "Invalid API key: the public id or secret key is wrong or has been revoked"


@dataclass
class Context:
    sandbox: Sandbox
    auth: Auth
    base_url: str


Resolver = Callable[..., Any]
Info = graphql.GraphQLResolveInfo[Context]


def _ctx(info: Info) -> Context:
    context: Context = info.context
    return context


def _authed(info: Info) -> Sandbox:
    ctx = _ctx(info)
    if ctx.auth is Auth.MISSING:
        raise SandboxError(MISSING_AUTH)
    if ctx.auth is Auth.INVALID:
        raise SandboxError(INVALID_AUTH)
    return ctx.sandbox


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def round_view(rnd: Round) -> dict[str, Any]:
    return {
        "id": rnd.id, "tournament": rnd.tournament, "number": rnd.number, "target": None,
        "openTime": _iso(rnd.open_time), "closeTime": _iso(rnd.close_time),
        "closeStakingTime": _iso(rnd.close_staking_time), "scoreTime": None,
        "resolveTime": None, "resolvedGeneral": False, "resolvedStaking": False,
        "payoutFactor": "1.0", "stakeThreshold": None,
        "dataDatestamp": int(rnd.open_time.strftime("%Y%m%d")),
        "status": "RESOLVING" if rnd.closed else "OPEN", "roundScoreConfigs": [],
    }


def submission_view(sub: Submission) -> dict[str, Any]:
    return {
        "id": sub.id, "filename": sub.filename, "insertedAt": _iso(sub.inserted_at),
        "triggerId": sub.trigger_id, "selected": sub.selected, "tournament": sub.tournament,
        "modelId": sub.model_id, "firstEffectiveDate": None,
        "round": {"number": sub.round_number, "tournament": sub.tournament, "openTime": None},
    }


def model_view(sandbox: Sandbox, model: Model) -> dict[str, Any]:
    return {
        "id": model.id, "name": model.name, "tournament": model.tournament,
        "submissions": [submission_view(s) for s in sandbox.model_submissions(model.id)],
        "v2Stake": {"status": None, "txHash": None, "value": "0"},
        "submissionWebhook": model.webhook,
    }


# ---- queries --------------------------------------------------------------------------
def rounds(info: Info, /, **args: Any) -> list[dict[str, Any]]:
    found = _ctx(info).sandbox.list_rounds(args.get("tournament"), args.get("number"),
                                           args.get("limit"))
    status = args.get("status")
    views = [round_view(r) for r in found]
    return [v for v in views if status is None or v["status"] == status]


def list_datasets(info: Info, /, **args: Any) -> list[str]:
    sandbox = _ctx(info).sandbox
    tournament = args.get("tournament") or None
    if args.get("round"):
        sandbox.find_round(tournament, args["round"])
    return sandbox.data.filenames(tournament)


def dataset(info: Info, /, **args: Any) -> str:
    ctx = _ctx(info)
    filename = args["filename"]
    tournament, number = ctx.sandbox.dataset_round(filename, args.get("tournament") or None,
                                                   args.get("round"))
    return ctx.sandbox.signer.sign(ctx.base_url, "GET", f"/files/{tournament}/{number}/{filename}")


def account(info: Info) -> dict[str, Any]:
    sandbox = _authed(info)
    settings = sandbox.settings
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_OID, f"account/{settings.public_id}")),
        "username": settings.username, "email": f"{settings.username}@sandbox.invalid",
        "status": "VERIFIED", "mfaEnabled": False, "insertedAt": _iso(sandbox.created_at),
        "walletAddress": None, "availableNmr": "0.0",
        "models": [model_view(sandbox, m) for m in sandbox.models.values()],
        "apiTokens": [{"name": "sandbox", "public_id": settings.public_id,
                       "scopes": ["upload_submission", "read_submission_info",
                                  "read_user_info"]}],
    }


def model(info: Info, /, **args: Any) -> dict[str, Any]:
    sandbox = _authed(info)
    return model_view(sandbox, sandbox.model(args.get("modelId")))


def submissions(info: Info, /, **args: Any) -> list[dict[str, Any]]:
    found = _authed(info).model_submissions(args.get("modelId"))
    if args.get("id"):
        found = [s for s in found if s.id == args["id"]]
    return [submission_view(s) for s in found]


def _upload_auth(info: Info, tournament: int, args: dict[str, Any]
                 ) -> dict[str, str]:
    sandbox = _authed(info)
    slot = sandbox.issue_upload(args.get("modelId"), args["filename"], tournament)
    url = sandbox.signer.sign(_ctx(info).base_url, "PUT", f"/uploads/{slot.filename}")
    return {"filename": slot.filename, "url": url}


def upload_auth(info: Info, /, **args: Any) -> dict[str, str]:
    if args["tournament"] == 11:
        raise SandboxError("Signals submissions use submissionUploadSignalsAuth")
    return _upload_auth(info, args["tournament"], args)


def signals_upload_auth(info: Info, /, **args: Any) -> dict[str, str]:
    tournament = args["tournament"]
    if tournament != 11:
        raise SandboxError(f"submissionUploadSignalsAuth is for Signals (11), not {tournament}")
    return _upload_auth(info, tournament, args)


# ---- mutations ------------------------------------------------------------------------
def _create(info: Info, tournament: int, args: dict[str, Any]
            ) -> dict[str, Any]:
    sub = _authed(info).create_submission(
        filename=args["filename"], tournament=tournament, model_id=args.get("modelId"),
        trigger_id=args.get("triggerId"), source=args.get("source"),
        data_datestamp=args.get("dataDatestamp"),
    )
    return submission_view(sub)


def create_submission(info: Info, /, **args: Any) -> dict[str, Any]:
    if args["tournament"] == 11:
        raise SandboxError("Signals submissions use createSignalsSubmission")
    return _create(info, args["tournament"], args)


def create_signals_submission(info: Info, /, **args: Any) -> dict[str, Any]:
    return _create(info, 11, args)


def set_submission_webhook(info: Info, /, **args: Any) -> str:
    _authed(info).set_webhook(args.get("modelId"), args.get("newSubmissionWebhook"))
    return "true"


def trigger_model_webhook(info: Info, /, **args: Any) -> str:
    return _authed(info).fire_test(args.get("modelId"))


ROOT: dict[str, Resolver] = {
    "rounds": rounds, "listDatasets": list_datasets, "dataset": dataset, "account": account,
    "model": model, "submissions": submissions, "submission_upload_auth": upload_auth,
    "submissionUploadSignalsAuth": signals_upload_auth, "create_submission": create_submission,
    "createSignalsSubmission": create_signals_submission,
    "setSubmissionWebhook": set_submission_webhook, "triggerModelWebhook": trigger_model_webhook,
}


def _root_resolver(parent: Any, info: Info, /, **args: Any) -> Any:
    if info.parent_type.name in ("Query", "Mutation"):
        return ROOT[info.field_name](info, **args)
    return graphql.default_field_resolver(parent, info, **args)


def _bad_request(message: str) -> JSONResponse:
    return JSONResponse({"errors": [{"message": message}]}, status_code=400)


@functools.lru_cache(maxsize=256)
def _prepared(query: str, schema: graphql.GraphQLSchema
              ) -> tuple[graphql.DocumentNode | None, tuple[graphql.GraphQLError, ...]]:
    """A query parsed and validated once: clients send the same few documents every time,
    and the sandbox shares its machine's CPU with the server under test."""
    try:
        document = graphql.parse(query)
    except graphql.GraphQLError as error:
        return None, (error,)
    errors = graphql.validate(schema, document)
    return (None, tuple(errors)) if errors else (document, ())


async def endpoint(request: Request) -> Response:
    """``POST /``: one GraphQL request."""
    sandbox: Sandbox = request.app.state.sandbox
    try:
        payload = json.loads(await request.body())
    except ValueError:
        return _bad_request("Could not parse the request body as JSON")
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        return _bad_request("No query document supplied")
    variables = payload.get("variables")
    if variables is not None and not isinstance(variables, dict):
        return _bad_request("variables must be a JSON object")
    context = Context(sandbox, sandbox.check_auth(request.headers.get("authorization")),
                      str(request.base_url))
    schema = REFERENCE_SCHEMA if sandbox.faults.numerai_fields_only() else SCHEMA
    document, errors = _prepared(payload["query"], schema)
    if document is None:
        result = graphql.ExecutionResult(data=None, errors=list(errors))
    else:
        executed = graphql.execute(
            schema, document, context_value=context, variable_values=variables,
            operation_name=payload.get("operationName"), field_resolver=_root_resolver,
        )
        result = await executed if inspect.isawaitable(executed) else executed
    body: dict[str, Any] = {"data": result.data}
    if result.errors:
        body["errors"] = [error.formatted for error in result.errors]
    return JSONResponse(body)
