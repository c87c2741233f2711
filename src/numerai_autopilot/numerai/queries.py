"""The GraphQL documents the client sends, with Numerai's operation and argument names.

Each names only operations, arguments, types and fields a client known to work against
Numerai sends (numerapi 3.1.1, numerai-cli), except where a comment says otherwise; the
sandbox's schema marks what no reference shows. Kept as plain strings so the sandbox's
tests can replay exactly what the client sends.
"""

from __future__ import annotations

CURRENT_ROUND = """
query($tournament: Int!) {
  rounds(tournament: $tournament, number: 0) {
    number
    openTime
    closeTime
  }
}
"""

LIST_DATASETS = """
query($round: Int, $tournament: Int) {
  listDatasets(round: $round, tournament: $tournament)
}
"""

DATASET = """
query($filename: String!, $round: Int, $tournament: Int) {
  dataset(filename: $filename, round: $round, tournament: $tournament)
}
"""

MODELS = """
query {
  account {
    models {
      id
      name
      tournament
    }
  }
}
"""

SUBMISSIONS = """
query($modelId: String) {
  submissions(modelId: $modelId) {
    id
    filename
    insertedAt
    triggerId
    round {
      number
      tournament
    }
  }
}
"""

# Classic and Crypto share this pair; Signals has its own (below).
UPLOAD_AUTH = """
query($filename: String!, $tournament: Int!, $modelId: String) {
  submission_upload_auth(filename: $filename, tournament: $tournament, modelId: $modelId) {
    filename
    url
  }
}
"""

# No `source`: numerapi 2.x sent none; 3.1.1 sends the literal "numerapi" (base_api.py,
# upload_predictions), and no reference shows its type or what other values Numerai accepts.
CREATE_SUBMISSION = """
mutation($filename: String!, $tournament: Int!, $modelId: String, $triggerId: String) {
  create_submission(filename: $filename, tournament: $tournament, modelId: $modelId,
                    triggerId: $triggerId) {
    id
  }
}
"""

SIGNALS_UPLOAD_AUTH = """
query($filename: String!, $tournament: Int!, $modelId: String) {
  submissionUploadSignalsAuth(filename: $filename, tournament: $tournament, modelId: $modelId) {
    filename
    url
  }
}
"""

# No tournament argument, as numerapi's signalsapi.py sends it; no `source` (see above).
CREATE_SIGNALS_SUBMISSION = """
mutation($filename: String!, $modelId: String, $triggerId: String) {
  createSignalsSubmission(filename: $filename, modelId: $modelId, triggerId: $triggerId) {
    id
    firstEffectiveDate
  }
}
"""

# `submissionWebhook`: no reference reads it (numerapi and numerai-cli only set it, with the
# mutation below); the client treats an API that does not answer it as "cannot tell".
SUBMISSION_WEBHOOKS = """
query {
  account {
    models {
      id
      submissionWebhook
    }
  }
}
"""

SET_SUBMISSION_WEBHOOK = """
mutation($modelId: String!, $newSubmissionWebhook: String) {
  setSubmissionWebhook(modelId: $modelId, newSubmissionWebhook: $newSubmissionWebhook)
}
"""

TRIGGER_MODEL_WEBHOOK = """
mutation($modelId: String!) {
  triggerModelWebhook(modelId: $modelId)
}
"""
