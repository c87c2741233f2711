"""`autopilot runs` flags suspect runs: `!` after the state in a table that fits 80 columns,
why under it, and the figures in `--json`."""

from __future__ import annotations

import json
from pathlib import Path

from test_cli_local import autopilot

from numerai_autopilot.ledger import Ledger, NewRun, RunState

REASON = ("corr_example 0.013 is below its band 0.512..0.562 of the last 3 rounds "
          "(margin included: 0.412..0.662)")
HEALTH = {"figures": {"rows": 500.0, "corr_example": 0.013}, "rounds": 3,
          "band": {"rows": [500.0, 500.0], "corr_example": [0.512, 0.562]},
          "suspect": [REASON]}


def test_runs_flag_suspect_runs(tmp_path: Path) -> None:
    (tmp_path / "autopilot.toml").write_text(
        "[models.a_model_with_a_long_name]\npredictor = 'x.pkl'\n")
    ledger = Ledger.from_url(f"sqlite:///{tmp_path / '.autopilot/ledger.db'}")
    ledger.migrate()
    for number, suspect in ((1100, False), (1101, True)):
        run, _ = ledger.record(NewRun("a_model_with_a_long_name", "m-1", tournament=8,
                                      round_number=number, trigger_id=f"t-{number}",
                                      data_version="v5.3", is_test=False, source="webhook"))
        assert ledger.claim_run(run.id, "me") is not None
        for state in (RunState.DOWNLOADING, RunState.PREDICTING):
            ledger.advance(run.id, state, owner="me")
        health = HEALTH if suspect else {**HEALTH, "suspect": []}
        ledger.advance(run.id, RunState.HELD if suspect else RunState.UPLOADING, owner="me",
                       via=RunState.VALIDATING, detail={"health": health, "rows": 500})
    listed = autopilot("runs", cwd=tmp_path, env={"COLUMNS": "80"})
    assert listed.returncode == 0, listed.stderr
    table = listed.stdout.partition("suspect (!)")[0]  # the suspect lines are whole
    assert max(map(len, table.splitlines())) <= 80, listed.stdout
    assert "held!" in table and "uploading!" not in table
    assert f"a_model_with_a_long_name suspect (!): {REASON}" in listed.stdout
    as_json = autopilot("runs", "--json", cwd=tmp_path)
    rows = {row["round"]: row for row in json.loads(as_json.stdout)}
    assert rows[1101]["suspect"] is True and rows[1101]["health"] == HEALTH
    assert rows[1100]["suspect"] is False and rows[1100]["health"]["figures"]["rows"] == 500
