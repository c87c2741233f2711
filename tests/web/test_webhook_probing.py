"""Probing the webhook for model ids: an unknown model id and a wrong token for a known one
take the same path (the token is checked first) and the same time, and say the same."""

from __future__ import annotations

import statistics
import time
import uuid

import httpx
from server_harness import AUTH, StartServer, predictor


def test_unknown_model_ids_and_wrong_tokens_answer_alike(start_server: StartServer) -> None:
    server = start_server({"alpha": predictor("good")})
    known, body = server.model_id("alpha"), {"roundNumber": 1, "triggerId": "probe"}
    wrong = "0" * 64  # the form of a token
    probes = {"known model": f"/pred/{known}/{wrong}",
              "unknown model": f"/pred/{uuid.uuid4()}/{wrong}"}
    times: dict[str, list[float]] = {label: [] for label in probes}
    answers: dict[str, set[tuple[int, str]]] = {label: set() for label in probes}
    with httpx.Client(base_url=server.url) as prober:
        for _ in range(40):  # interleaved, so both see the same machine
            for label, path in probes.items():
                started = time.perf_counter()
                answer = prober.post(path, json=body)
                times[label].append(time.perf_counter() - started)
                answers[label].add((answer.status_code, answer.text))
    assert answers["known model"] == answers["unknown model"]
    assert {status for status, _ in answers["known model"]} == {401}
    known_s, unknown_s = (statistics.median(times[label]) for label in probes)
    assert abs(known_s - unknown_s) < max(0.002, 0.25 * max(known_s, unknown_s)), times
    metrics = httpx.get(f"{server.url}/metrics", headers=AUTH).text
    assert 'autopilot_webhook_answer_seconds_count{status="401"} 80.0' in metrics
    assert server.runs() == []
