"""The sandbox's GraphQL schema: what the references show of Numerai's, in SDL.

    SCHEMA              every field the sandbox answers
    REFERENCE_SCHEMA    without the fields described as OWN (no reference selects them)
"""

from __future__ import annotations

from typing import Any

import graphql

# Argument types follow the references' operations (numerapi 3.1.1's base_api.py,
# signalsapi.py, cryptoapi.py; numerai-cli's node/test.py): non-null where every reference
# sends a non-null value, nullable where one sends a nullable variable, so a nullable
# variable in a required slot is refused here as it would be on Numerai. A field no
# reference selects is described as OWN (below): Numerai may lack it, and with the fault
# setting ``numerai_fields_only`` the sandbox lacks it too (REFERENCE_SCHEMA).
SDL = """
enum RoundStatus { UPCOMING OPEN RESOLVING RESOLVED }

type RoundScoreConfig {
  id: ID  scoreConfigId: ID  roundNumberStart: Int  roundNumberEnd: Int  name: String
  version: String  displayName: String  totalScoreDays: Int  returnsLagDays: Int
  dataDelayDays: Int  universe: String  isCanonScore: Boolean  isPayout: Boolean
  scoringStart: String  scoringEnd: String  minMultiplier: String  maxMultiplier: String
  defaultMultiplier: String  clipThreshold: String  stakeThreshold: String  payoutFactor: String
}

type Round {
  id: ID  tournament: Int  number: Int  target: String
  openTime: String  closeTime: String  closeStakingTime: String  scoreTime: String
  resolveTime: String  resolvedGeneral: Boolean  resolvedStaking: Boolean
  payoutFactor: String  stakeThreshold: String  dataDatestamp: Int
  "OWN" status: RoundStatus
  roundScoreConfigs: [RoundScoreConfig]
}

type SubmissionRound { number: Int  tournament: Int  "OWN" openTime: String }

type Submission {
  id: ID  filename: String  insertedAt: String  triggerId: String  selected: Boolean
  firstEffectiveDate: String  round: SubmissionRound
  "OWN" tournament: Int
  "OWN" modelId: String
}

type Stake { status: String  txHash: String  "OWN" value: String }

type Model {
  id: ID  name: String  tournament: Int  submissions: [Submission]  v2Stake: Stake
  "OWN: numerapi and numerai-cli only set it (setSubmissionWebhook)"
  submissionWebhook: String
}

type ApiToken { name: String  public_id: String  scopes: [String] }

type Account {
  id: ID  username: String  email: String  status: String  mfaEnabled: Boolean
  insertedAt: String  walletAddress: String  availableNmr: String
  models: [Model]  apiTokens: [ApiToken]
}

type UploadAuth { filename: String  url: String }

type Query {
  # list_rounds sends $tournament: Int; get_current_round Int! (number: 0)
  rounds(tournament: Int, number: Int, target: String, status: RoundStatus, limit: Int): [Round]
  listDatasets(round: Int, tournament: Int): [String]
  dataset(filename: String!, round: Int, tournament: Int): String
  account: Account
  # numerapi sends $modelId: String (numerapi.py) and String! (modelid_to_modelname)
  model(modelId: String): Model
  # numerapi sends $modelId: String (submission_ids); numerai-cli String!
  submissions(modelId: String): [Submission]
  # numerapi's _upload_auth: $filename: String!, $tournament: Int!, $modelId: String
  submission_upload_auth(filename: String!, tournament: Int!, modelId: String): UploadAuth
  submissionUploadSignalsAuth(filename: String!, tournament: Int!, modelId: String): UploadAuth
}

type Mutation {
  # numerapi 3.1.1 passes source as the string literal "numerapi"; 2.x passed none
  create_submission(filename: String!, tournament: Int!, modelId: String, triggerId: String,
                    source: String, dataDatestamp: Int): Submission
  # no tournament argument (signalsapi.py)
  createSignalsSubmission(filename: String!, modelId: String, triggerId: String,
                          source: String, dataDatestamp: Int): Submission
  # numerapi's set_submission_webhook: $modelId: String!, $newSubmissionWebhook: String
  setSubmissionWebhook(modelId: String!, newSubmissionWebhook: String): String
  # numerai-cli's node/test.py: $modelId: String!
  triggerModelWebhook(modelId: String!): String
}
"""

SCHEMA = graphql.build_schema(SDL)


def _without_own_fields(sdl: str) -> graphql.GraphQLSchema:
    """The schema of ``sdl`` without the fields described as OWN."""

    class DropOwn(graphql.Visitor):
        def enter_field_definition(self, node: graphql.FieldDefinitionNode, *_: Any) -> Any:
            own = node.description is not None and node.description.value.startswith("OWN")
            return graphql.REMOVE if own else None

    document = graphql.visit(graphql.parse(sdl), DropOwn())
    return graphql.build_ast_schema(document)


#: What the references show of Numerai's schema: ``numerai_fields_only`` answers with it.
REFERENCE_SCHEMA = _without_own_fields(SDL)
