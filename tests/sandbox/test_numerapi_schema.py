"""Every GraphQL document of the installed numerapi, validated against the sandbox's schema.

The documents are read from numerapi's source: each string constant of its API classes that
is a query or a mutation, and the f-string of ``_upload_auth`` once for every endpoint its
callers name. What a compute service needs (the table in numerai-protocol.md) must validate;
the rest of what the sandbox lacks is listed here (for numerapi 3.1.1, pinned in
constraints.txt), so a change on either side shows.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import graphql
import numerapi
import pytest

from numerai_autopilot.sandbox.schema import SCHEMA

MODULES = ("base_api.py", "numerapi.py", "signalsapi.py", "cryptoapi.py")

# numerapi's methods behind the operations a compute service needs: the current round,
# the data, the models, uploads (Classic, Signals, Crypto), submissions, the webhook.
NEEDED = frozenset({
    "get_current_round", "check_round_open", "check_new_round", "list_datasets",
    "download_dataset", "get_account", "get_models", "_upload_auth[submission_upload_auth]",
    "_upload_auth[submissionUploadSignalsAuth]", "upload_predictions", "submission_ids",
    "set_submission_webhook",
})

# numerai-cli's own documents (numerai/cli/node/test.py), which no numerapi method sends.
NUMERAI_CLI = {
    "numerai-cli test: triggerModelWebhook":
        "mutation ( $modelId: String! ) { triggerModelWebhook( modelId: $modelId ) }",
    "numerai-cli test: submissions":
        "query ( $modelId: String! ) { submissions( modelId: $modelId ){ "
        "round{ number, tournament }, triggerId insertedAt } }",
}

# What the sandbox does not imitate: staking, profiles, leaderboards, scores, payouts,
# diagnostics, model uploads, the wallet, the pipeline status. By numerapi method.
NOT_IN_SANDBOX = frozenset({
    "Api.models_of_account", "Api.public_user_profile", "Api.stake_get", "Api.v3_stake_auth",
    "Api.v3_stake_config", "Api.v3_stake_round", "Api.v3_stake_claim", "Api.set_bio",
    "Api.set_link", "Api.wallet_transactions", "Api._upload_auth[diagnosticsUploadAuth]",
    "Api.upload_diagnostics", "Api.diagnostics", "Api.submission_scores",
    "Api.pending_model_payouts", "Api.round_model_performances_v2", "Api.intra_round_scores",
    "Api.stake_change", "Api.stake_drain", "Api.get_account_leaderboard",
    "Api.pipeline_status", "Api.model_upload", "Api.model_upload_data_versions",
    "Api.model_upload_docker_images", "Api.download_submission", "NumerAPI.get_leaderboard",
    "NumerAPI.daily_model_performances", "SignalsAPI.get_leaderboard",
    "SignalsAPI.daily_model_performances", "CryptoAPI.get_leaderboard",
})


@dataclass(frozen=True)
class Document:
    """One GraphQL document numerapi sends, and where."""

    method: str  # Class.method, with the endpoint for _upload_auth
    where: str  # module.py:line
    text: str

    def errors(self) -> list[str]:
        return [error.message for error in graphql.validate(SCHEMA, graphql.parse(self.text))]


def _is_document(text: str) -> bool:
    head = text.lstrip()
    return head.startswith(("query", "mutation")) and "{" in head and "{" not in head[:5]


def _upload_endpoints(trees: dict[str, ast.Module]) -> list[str]:
    """The endpoints numerapi's methods pass to ``_upload_auth``."""
    return sorted({
        call.args[0].value
        for tree in trees.values() for call in ast.walk(tree)
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
        and call.func.attr == "_upload_auth" and call.args
        and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str)
    })


def _f_string(node: ast.JoinedStr, endpoint: str) -> str:
    parts = []
    for value in node.values:
        if isinstance(value, ast.Constant):
            parts.append(str(value.value))
        elif isinstance(value, ast.FormattedValue) and ast.unparse(value.value) == "endpoint":
            parts.append(endpoint)
        else:
            raise AssertionError(f"numerapi builds a query from {ast.unparse(value)}: teach "
                                 "this test what it stands for")
    return "".join(parts)


def _documents_of(name: str, cls: ast.ClassDef, endpoints: list[str]) -> Iterator[Document]:
    for method in (n for n in cls.body if isinstance(n, ast.FunctionDef)):
        inner = {id(v) for n in ast.walk(method) if isinstance(n, ast.JoinedStr)
                 for v in n.values}
        for node in ast.walk(method):
            where = f"{name}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.JoinedStr):
                text = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
                if _is_document(text):
                    for endpoint in endpoints:
                        yield Document(f"{cls.name}.{method.name}[{endpoint}]", where,
                                       _f_string(node, endpoint))
            elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
                  and id(node) not in inner and _is_document(node.value)):
                yield Document(f"{cls.name}.{method.name}", where, node.value)


@cache
def numerapi_documents() -> tuple[Document, ...]:
    root = Path(numerapi.__file__).parent
    trees = {name: ast.parse((root / name).read_text()) for name in MODULES}
    endpoints = _upload_endpoints(trees)
    return tuple(
        document
        for name, tree in trees.items()
        for cls in tree.body if isinstance(cls, ast.ClassDef)
        for document in _documents_of(name, cls, endpoints)
    )


def _needed(document: Document) -> bool:
    return document.method.split(".", 1)[1] in NEEDED


def test_numerapi_is_read_whole() -> None:
    documents = numerapi_documents()
    assert len(documents) > 40
    methods = {d.method.split(".", 1)[1] for d in documents}
    assert methods >= NEEDED, f"numerapi no longer has {sorted(NEEDED - methods)}"
    for document in documents:
        graphql.parse(document.text)  # every one is GraphQL


@pytest.mark.parametrize(
    "document", [d for d in numerapi_documents() if _needed(d)], ids=lambda d: d.method
)
def test_what_a_compute_service_needs_validates(document: Document) -> None:
    assert document.errors() == [], f"{document.method} ({document.where})"


@pytest.mark.parametrize("name", list(NUMERAI_CLI))
def test_numerai_clis_documents_validate(name: str) -> None:
    errors = graphql.validate(SCHEMA, graphql.parse(NUMERAI_CLI[name]))
    assert [e.message for e in errors] == []


def test_the_sandbox_lacks_only_the_listed_operations() -> None:
    refused = {d.method: f"{d.where}: {d.errors()[0]}" for d in numerapi_documents()
               if d.errors()}
    unexpected = {m: why for m, why in refused.items() if m not in NOT_IN_SANDBOX}
    assert not unexpected, f"the sandbox refuses these numerapi documents: {unexpected}"
    now_valid = NOT_IN_SANDBOX - set(refused)
    assert not now_valid, f"these validate now; take them off NOT_IN_SANDBOX: {now_valid}"
