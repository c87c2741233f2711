"""GraphQL answers and refusals, shaped as Numerai shapes them (HTTP 200 + errors)."""

from __future__ import annotations

import uuid

import httpx
from sandbox_helpers import (
    CURRENT_ROUND,
    DATASET,
    SIGNALS_UPLOAD_AUTH,
    SUBMISSIONS,
    UPLOAD_AUTH,
    error_message,
)

from numerai_autopilot.sandbox.testing import RunningSandbox

ACCOUNT = "query { account { models { id name tournament } } }"


def test_error_shape_is_numerais(sandbox: RunningSandbox) -> None:
    response = httpx.post(sandbox.url, json={"query": ACCOUNT})
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"account": None}
    error = body["errors"][0]
    assert set(error) == {"message", "locations", "path"}
    assert error["path"] == ["account"] and error["locations"][0]["line"] == 1


def test_missing_and_wrong_keys_are_refused_without_echoing_the_secret(
        sandbox: RunningSandbox) -> None:
    missing = httpx.post(sandbox.url, json={"query": ACCOUNT}).json()
    assert "must be authenticated" in error_message(missing)
    for header in (f"Token {sandbox.public_id}$wrong-secret", f"Token WRONG${sandbox.secret_key}",
                   f"Bearer {sandbox.public_id}${sandbox.secret_key}", "Token no-dollar"):
        response = httpx.post(sandbox.url, json={"query": ACCOUNT},
                              headers={"Authorization": header})
        assert response.status_code == 200
        assert "Invalid API key" in error_message(response.json())
        assert sandbox.secret_key not in response.text
    ok = sandbox.graphql(ACCOUNT)
    assert {m["name"] for m in ok["data"]["account"]["models"]} == {
        "alpha", "beta", "gamma", "sig", "cry"}


def test_public_queries_need_no_key(sandbox: RunningSandbox) -> None:
    body = sandbox.graphql(CURRENT_ROUND, {"tournament": 8}, auth=False)
    rnd = body["data"]["rounds"][0]
    assert rnd["number"] == sandbox.settings.start_round
    assert rnd["openTime"] < rnd["closeTime"] and rnd["closeStakingTime"] == rnd["closeTime"]
    for tournament in (11, 12):
        assert sandbox.graphql(CURRENT_ROUND, {"tournament": tournament}, auth=False)["data"]


def test_model_ids_are_stable_uuids(sandbox: RunningSandbox) -> None:
    for model_id in sandbox.models.values():
        assert uuid.UUID(model_id).version == 5
    assert sandbox.models == sandbox.settings.model_ids()


def test_unknown_model_is_refused(sandbox: RunningSandbox) -> None:
    body = sandbox.graphql(UPLOAD_AUTH, {"filename": "p.csv", "tournament": 8,
                                         "modelId": str(uuid.uuid4())})
    assert "Model not found" in error_message(body)
    body = sandbox.graphql(SUBMISSIONS, {"modelId": "not-a-model"})
    assert "Model not found" in error_message(body)


def test_wrong_tournament_is_refused(sandbox: RunningSandbox) -> None:
    body = sandbox.graphql(UPLOAD_AUTH, {"filename": "p.csv", "tournament": 11,
                                         "modelId": sandbox.models["alpha"]})
    assert "submissionUploadSignalsAuth" in error_message(body)
    body = sandbox.graphql(UPLOAD_AUTH, {"filename": "p.csv", "tournament": 8,
                                         "modelId": sandbox.models["sig"]})
    assert "Signals model" in error_message(body)
    body = sandbox.graphql(SIGNALS_UPLOAD_AUTH, {"filename": "p.csv", "tournament": 11,
                                                 "modelId": sandbox.models["alpha"]})
    assert "Classic model" in error_message(body)
    body = sandbox.graphql(CURRENT_ROUND, {"tournament": 99})
    assert "Tournament 99 not found" in error_message(body)


def test_unknown_dataset_and_round_are_refused(sandbox: RunningSandbox) -> None:
    body = sandbox.graphql(DATASET, {"filename": "v5.3/nope.parquet"}, auth=False)
    assert "Dataset not found" in error_message(body)
    body = sandbox.graphql(DATASET, {"filename": "v4/live.parquet"}, auth=False)
    assert "Dataset not found" in error_message(body)
    body = sandbox.graphql(DATASET, {"filename": "v5.3/live.parquet", "tournament": 11})
    assert "Dataset not found" in error_message(body)
    body = sandbox.graphql(DATASET, {"filename": "v5.3/live.parquet", "round": 5})
    assert "Round 5 not found" in error_message(body)


def test_invalid_documents_and_variables(sandbox: RunningSandbox) -> None:
    body = sandbox.graphql("query { rounds(tournament: 8) { nope } }")
    assert "Cannot query field 'nope'" in error_message(body)
    body = sandbox.graphql(CURRENT_ROUND, {"tournament": "eight"})
    assert "tournament" in error_message(body)
    assert sandbox.graphql("query {")["errors"][0]["locations"]
    bad_json = httpx.post(sandbox.url, content=b"{not json",
                          headers={"content-type": "application/json"})
    assert bad_json.status_code == 400 and "errors" in bad_json.json()


def test_a_nullable_variable_in_a_required_slot_is_refused(sandbox: RunningSandbox) -> None:
    """Where numerapi or numerai-cli declare an argument non-null, so does the sandbox."""
    model_id = sandbox.models["alpha"]
    body = sandbox.graphql("mutation($m: String $u: String) "
                           "{ setSubmissionWebhook(modelId: $m newSubmissionWebhook: $u) }",
                           {"m": model_id, "u": None})
    assert error_message(body) == ("Variable '$m' of type 'String' used in position expecting "
                                   "type 'String!'.")
    body = sandbox.graphql(SIGNALS_UPLOAD_AUTH.replace("$tournament: Int!", "$tournament: Int"),
                           {"filename": "p.csv", "tournament": 11,
                            "modelId": sandbox.models["sig"]})
    assert "expecting type 'Int!'" in error_message(body)
    body = sandbox.graphql("mutation($m: String) { triggerModelWebhook(modelId: $m) }",
                           {"m": model_id})
    assert "expecting type 'String!'" in error_message(body)


def test_what_no_reference_sends_is_refused(sandbox: RunningSandbox) -> None:
    for query in (
        'query { submissionUploadAuth(filename: "p.csv", tournament: 8) { url } }',
        'mutation { createSubmission(filename: "p.csv", tournament: 8) { id } }',
        'mutation { create_submission(filename: "p.csv", tournament: 8, version: 2) { id } }',
        'mutation { createSignalsSubmission(filename: "p.csv", tournament: 11) { id } }',
        'query { submissions(id: "x") { id } }',
    ):
        message = error_message(sandbox.graphql(query))
        assert message.startswith(("Cannot query field", "Unknown argument")), (query, message)


def test_the_sandboxs_own_fields_can_be_taken_away(sandbox: RunningSandbox) -> None:
    query = "query { account { models { id submissionWebhook } } }"
    assert sandbox.graphql(query)["data"]["account"]["models"]
    sandbox.set_faults(numerai_fields_only=True)
    assert error_message(sandbox.graphql(query)).startswith(
        "Cannot query field 'submissionWebhook' on type 'Model'.")
    assert sandbox.graphql(ACCOUNT)["data"]["account"]["models"]
    sandbox.clear_faults()
    assert sandbox.graphql(query)["data"]["account"]["models"]


def test_list_datasets_per_tournament(sandbox: RunningSandbox) -> None:
    query = "query($t: Int $r: Int) { listDatasets(tournament: $t round: $r) }"
    classic = sandbox.graphql(query, {"t": 8})["data"]["listDatasets"]
    assert classic == sorted(f"v5.3/{name}" for name in (
        "features.json", "live.parquet", "live_benchmark_models.parquet",
        "live_example_preds.parquet", "train.parquet", "validation.parquet",
        "validation_example_preds.parquet"))
    assert sandbox.graphql(query, {"t": 11})["data"]["listDatasets"] == [
        "signals/v2.1/live.parquet"]
    assert sandbox.graphql(query, {"t": 12})["data"]["listDatasets"] == [
        "crypto/v2.0/live_universe.parquet"]
    assert len(sandbox.graphql(query, {"t": 0})["data"]["listDatasets"]) == len(classic) + 2
    assert "Round 3 not found" in error_message(sandbox.graphql(query, {"t": 8, "r": 3}))
