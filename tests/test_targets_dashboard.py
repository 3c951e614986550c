"""Targets on the dashboard (issue #13): the Overview tiles and the Teams page say whether each
configured target is met and, if not, by how much, in the unit of the figure shown.

The store and config are those of tests/test_targets_report.py (production only, so the
organisation row and the production row show the same figures): organisation lead time 10 h
(the median of 10 h x3 and 30 h x2) against <= 24 h; change failure rate 1 of 8 attempts =
12.5 % against <= 10 %; 7 successful deployments in 59 days = 0.83/wk against >= 1/wk; team
payments lead time 30 h against its own <= 2 h.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from tests import cli_inprocess
from tests.apptest_pages import open_page
from tests.child_env import child_env
from tests.store_fixture import write_history
from tests.test_targets_report import CONFIG, history

pytestmark = pytest.mark.usefixtures("one_duckdb_thread")  # tests/conftest.py
WINDOW = {"since": "2026-01-01", "until": "2026-03-01"}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("targets-dash")
    commits, deployments = history()
    db = write_history(
        tmp / "store.ducklake",
        services={"storefront": "web", "payments-api": "payments"},
        commits=dict(commits),
        deployments=deployments,
    )
    config = tmp / "gitops-dora.yaml"
    config.write_text(CONFIG)
    return db, config


@pytest.fixture(autouse=True)
def use_store(store: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    db, config = store
    monkeypatch.setenv("GITOPS_DORA_DB", str(db))
    monkeypatch.setenv("GITOPS_DORA_CONFIG", str(config))
    for name in ("GITOPS_DORA_REQUIRE_LOGIN", "GITOPS_DORA_WARMUP"):
        monkeypatch.delenv(name, raising=False)
    yield


def metrics_json(db: Path, *args: str) -> dict[str, Any]:
    """``gitops-dora metrics`` beside the store (its gitops-dora.yaml holds the targets), run in this
    process (tests/cli_inprocess.py: same entry point, environment, folder, streams and exit status,
    without a process's start-up); the process is not what these tests are about."""
    proc = cli_inprocess.run(
        ["--db", str(db), "metrics", "--since", WINDOW["since"], "--until", WINDOW["until"], *args,
         "--format", "json"],
        env=child_env(), cwd=db.parent,
    )
    assert proc.returncode == 0, proc.stderr
    payload: dict[str, Any] = json.loads(proc.stdout)
    return payload


def captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption]


def target_lines(shown: list[str]) -> list[str]:
    return [c for c in shown if c[:1] in "✅❌➖" and " Target " in c[:10]]


def test_overview_tiles_say_met_or_missed_by_how_much(store: tuple[Path, Path]) -> None:
    db, _ = store
    (org,) = [g for g in metrics_json(db, "--group-by", "environment")["groups"] if g["deployments"]]
    lead, cfr, per_week = (
        org["lead_time_median_hours"],
        org["change_failure_rate"],
        org["deployments_per_week"],
    )
    assert (lead, cfr) == (pytest.approx(10.0), pytest.approx(1 / 8))  # the hand-worked figures
    assert per_week == pytest.approx(7 * 7 / 59)
    at = open_page("overview", **WINDOW)
    shown = captions(at)
    expected = [
        "✅ Target ≤ 24.0 h: met",
        f"❌ Target ≤ 10.0%: missed by {(cfr - 0.10) * 100:.1f} pp",
        f"❌ Target ≥ 1.00/wk: missed by {1 - per_week:.2f}/wk",
    ]
    for text in expected:  # the organisation row and the production row
        assert shown.count(text) == 2, (text, target_lines(shown))
    assert len(target_lines(shown)) == 6  # no target for recovery, restore or rework: no line


def test_overview_filtered_to_a_team_uses_its_targets() -> None:
    at = open_page("overview", team="payments", **WINDOW)
    shown = captions(at)
    assert "❌ Target ≤ 2.0 h: missed by 28.0 h" in shown  # 30 h against the team's own 2 h
    assert not any(c.startswith("✅ Target ≤ 24.0 h") for c in shown)


def test_teams_page_has_a_target_column_per_targeted_metric(store: tuple[Path, Path]) -> None:
    db, _ = store
    teams = {g["team"]: g for g in metrics_json(db, "--group-by", "team")["groups"]}
    at = open_page("teams", **WINDOW)
    frame = at.dataframe[0].value
    assert {"deployment_frequency_target", "lead_time_target", "change_failure_rate_target"} <= set(
        frame.columns
    )
    assert "rework_rate_target" not in frame.columns
    rows = {row["team"]: row for row in frame.to_dict("records")}
    assert teams["payments"]["lead_time_median_hours"] == pytest.approx(30.0)
    assert rows["payments"]["lead_time_target"] == "target ≤ 2.0 h: missed by 28.0 h"
    assert rows["web"]["lead_time_target"] == "target ≤ 24.0 h: met"
    assert rows["web"]["change_failure_rate_target"] == "target ≤ 10.0%: met"
    web_cfr = teams["payments"]["change_failure_rate"]
    assert (
        rows["payments"]["change_failure_rate_target"]
        == f"target ≤ 10.0%: missed by {(web_cfr - 0.1) * 100:.1f} pp"
    )
