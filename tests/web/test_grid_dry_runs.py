"""The round grid leaves dry runs out: they add no round, no cell and no open time, while a
close time they were given still shows (`web.dashboard.views.build_grids`, real SQLite)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from numerai_autopilot.config import parse_config
from numerai_autopilot.ledger import Ledger, NewRun, RunState, own_trigger_id
from numerai_autopilot.numerai import RoundInfo
from numerai_autopilot.web.dashboard.views import build_grids


def _new(source: str, round_number: int, trigger_id: str, close: datetime | None = None
         ) -> NewRun:
    return NewRun("alpha", "m-alpha", 8, round_number, trigger_id, "v5.3", is_test=False,
                  source=source, resubmit=source == "dry-run", close_time=close)


def test_dry_runs_are_not_rounds_in_the_grid(tmp_path: Path) -> None:
    config = parse_config("[models.alpha]\npredictor = 'x.py:f'\n", source="t.toml",
                          base_dir=tmp_path, env={})
    close = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)
    with Ledger.from_url(f"sqlite:///{tmp_path / 'ledger.db'}") as ledger:
        ledger.migrate()
        dry, _ = ledger.record(_new("dry-run", 1100, own_trigger_id("dry-run"), close))
        ledger.claim_run(dry.id, "cli")
        ledger.advance(dry.id, RunState.DRY_RUN, owner="cli", detail={"dry_run": "/x.csv"})
        now = datetime.now(UTC)
        [grid] = build_grids(config, ledger.runs(), {}, now)
        assert grid.rounds == ()  # a dry run alone makes no round

        webhook, _ = ledger.record(_new("webhook", 1100, "numerai-trigger-1"))
        assert webhook.state is RunState.QUEUED and webhook.created_at > dry.created_at
        [grid] = build_grids(config, ledger.runs(), {}, now)
        [row] = grid.rounds
        assert row.number == 1100 and row.open_time == webhook.created_at  # not the dry run's
        assert row.close_time == close  # the close time the dry run was given
        [cell] = row.cells
        assert cell.run_id == webhook.id and cell.status == "running"

        # Numerai's own times win
        opened = close - timedelta(days=1)
        rounds = {(8, 1100): RoundInfo(1100, opened, close + timedelta(hours=1))}
        [grid] = build_grids(config, ledger.runs(), rounds, now)
        assert (grid.rounds[0].open_time, grid.rounds[0].close_time) == (
            opened, close + timedelta(hours=1))
