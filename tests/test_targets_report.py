"""Targets (config ``targets:``): validation, which scope wins, and the report's ``<metric>_target``
and ``<metric>_target_met`` columns (issue #13).

Hand-made store, production only, window [2026-01-01, 2026-03-01) (59 days), UTC:
    storefront (team web):        deployments 01-05, 01-12, 01-19, 01-26 10:00; each ships one commit
                                  authored 10 h before -> 3 counted lead times of 10 h (the first is
                                  the baseline)
    payments-api (team payments): deployments 01-06, 01-13, 01-20, 01-27 12:00, commits 30 h before;
                                  the 01-20 deployment failed -> 2 lead times of 30 h
Config targets: organisation lead time <= 24 h (as "1d"), change failure rate <= 10% (as "10%"),
deployments per week >= 1; team payments lead time <= 2 h; service storefront deployments >= 0.5/wk.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from analytics.config import Config, check_target, load_config
from analytics.errors import ConfigError
from tests import cli_inprocess
from tests.store_fixture import Deploy, write_history

WINDOW = ["--since", "2026-01-01", "--until", "2026-03-01"]
CONFIG = """\
services:
  - name: storefront
    team: web
  - name: payments-api
    team: payments
targets:
  lead_time_median_hours: 1d
  change_failure_rate: 10%
  deployments_per_week: 1
  teams:
    payments:
      lead_time_median_hours: 2
  services:
    storefront:
      deployments_per_week: 0.5
"""


def history() -> tuple[dict[str, tuple[str, str]], dict[str, Deploy]]:
    commits: dict[str, tuple[str, str]] = {}
    deployments: dict[str, Deploy] = {}
    for service, first, hours in (
        ("storefront", "2026-01-05T10:00", 10),
        ("payments-api", "2026-01-06T12:00", 30),
    ):
        for week in range(4):
            at = datetime.fromisoformat(first) + timedelta(weeks=week)
            sha = f"{service}-{week}"
            commits[sha] = (service, (at - timedelta(hours=hours)).isoformat(timespec="minutes"))
            status = "failed" if service == "payments-api" and week == 2 else "success"
            deployments[sha] = Deploy(
                service, service, at.isoformat(timespec="minutes"), [sha], status=status
            )
    return commits, deployments


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("targets")
    commits, deployments = history()
    path = write_history(
        tmp / "store.ducklake",
        services={"storefront": "web", "payments-api": "payments"},
        commits=dict(commits),
        deployments=deployments,
    )
    (tmp / "targets.yaml").write_text(CONFIG)
    return path


def run(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "GITOPS_DORA_DB"}
    return cli_inprocess.run(["--db", str(db), "--config", str(db.parent / "targets.yaml"), *args], env=env,
                             cwd=db.parent)  # in this process


def test_scopes_override_metric_by_metric(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG)
    config = load_config(path)
    assert config.targets_for() == {
        "deployments_per_week": 1.0,
        "lead_time_median_hours": 24.0,
        "change_failure_rate": 0.1,
    }
    assert config.targets_for(team="payments")["lead_time_median_hours"] == 2.0
    assert config.targets_for(service="payments-api")["lead_time_median_hours"] == 2.0  # its team's
    assert config.targets_for(service="storefront") == {
        "deployments_per_week": 0.5,
        "lead_time_median_hours": 24.0,
        "change_failure_rate": 0.1,
    }
    assert config.targets.metrics() == [
        "deployments_per_week",
        "lead_time_median_hours",
        "change_failure_rate",
    ]
    assert Config().targets.metrics() == [] and Config().targets_for(service="x") == {}


def test_check_target_floor_and_ceiling() -> None:
    assert check_target("deployments_per_week", 0.75, 1.0).met is False
    assert check_target("deployments_per_week", 0.75, 1.0).missed_by == pytest.approx(0.25)
    assert check_target("deployments_per_week", 1.0, 1.0).met is True
    assert check_target("lead_time_median_hours", 30.0, 2.0).missed_by == pytest.approx(28.0)
    assert check_target("lead_time_median_hours", 2.0, 2.0).met is True
    assert check_target("change_failure_rate", None, 0.1).met is None


@pytest.mark.parametrize(
    ("yaml_text", "fragment"),
    [
        ("targets:\n  lead_time: 24\n", "line 2: targets.lead_time: Extra inputs are not permitted"),
        ("targets:\n  change_failure_rate: 150%\n", "targets.change_failure_rate"),
        ("targets:\n  lead_time_median_hours: soon\n", "not a duration"),
        ("targets:\n  teams:\n    web:\n      rework_rate: 2\n", "line 4: targets.teams.web.rework_rate"),
        ("targets:\n  deployments_per_week: 0\n", "targets.deployments_per_week"),
    ],
)
def test_bad_targets_name_the_key_and_line(tmp_path: Path, yaml_text: str, fragment: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert fragment in str(info.value)


def test_report_has_target_and_target_met_columns(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    proc = run(db, "report", "--out", str(out), *WINDOW)
    assert proc.returncode == 0, proc.stderr
    header = out.read_text().splitlines()[0].split(",")
    added = [c for c in header if "_target" in c]
    assert added == [
        "deployments_per_week_target",
        "deployments_per_week_target_met",
        "lead_time_median_hours_target",
        "lead_time_median_hours_target_met",
        "change_failure_rate_target",
        "change_failure_rate_target_met",
    ]
    assert header[-len(added) - 1] == "partial_period"  # after every column there was
    rows = {r["service"]: r for r in csv.DictReader(io.StringIO(out.read_text()))}
    pay, shop = rows["payments-api"], rows["storefront"]
    # payments-api: 3 successful deployments in 59 days = 0.36/wk < 1; lead time 30 h > its team's 2 h;
    # CFR 1 failed of 4 attempts = 0.25 > 0.1
    assert float(pay["deployments_per_week"]) == pytest.approx(3 * 7 / 59, abs=0.005)
    assert (pay["deployments_per_week_target"], pay["deployments_per_week_target_met"]) == ("1.00", "false")
    assert float(pay["lead_time_median_hours"]) == pytest.approx(30.0)
    assert (pay["lead_time_median_hours_target"], pay["lead_time_median_hours_target_met"]) == (
        "2.00",
        "false",
    )
    assert (pay["change_failure_rate_target"], pay["change_failure_rate_target_met"]) == ("0.1000", "false")
    # storefront: 4 deployments = 0.47/wk < its own 0.5; lead time 10 h <= 24 h; CFR 0 <= 0.1
    assert (shop["deployments_per_week_target"], shop["deployments_per_week_target_met"]) == ("0.50", "false")
    assert (shop["lead_time_median_hours_target"], shop["lead_time_median_hours_target_met"]) == (
        "24.00",
        "true",
    )
    assert shop["change_failure_rate_target_met"] == "true"


def test_report_json_and_team_rows_and_partial_periods(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    assert run(db, "report", "--out", str(out), "--group-by", "team", *WINDOW).returncode == 0
    rows = {r["team"]: r for r in json.loads(out.read_text())["rows"]}
    assert rows["payments"]["lead_time_median_hours_target"] == 2.0
    assert rows["payments"]["lead_time_median_hours_target_met"] is False
    assert rows["web"]["lead_time_median_hours_target"] == 24.0  # the organisation's
    assert rows["web"]["lead_time_median_hours_target_met"] is True
    weekly = tmp_path / "w.csv"
    assert (
        run(db, "report", "--out", str(weekly), "--period", "week", "--group-by", "team", *WINDOW).returncode
        == 0
    )
    weeks = list(csv.DictReader(io.StringIO(weekly.read_text())))
    assert sum(r["partial_period"] == "true" for r in weeks) == 4  # first and last week of both teams
    assert {r["deployments_per_week_target_met"] for r in weeks if r["partial_period"] == "false"} == {
        "true", "false"}
    for row in weeks:
        assert row["lead_time_median_hours_target"] != ""
        if row["partial_period"] == "true":  # 2026-01-01 is a Thursday: judged no more than rated
            assert (
                row["lead_time_median_hours_target_met"] == ""
                and row["deployments_per_week_target_met"] == ""
            )


def test_no_targets_no_target_columns(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    env = {k: v for k, v in os.environ.items() if k != "GITOPS_DORA_DB"}
    proc = cli_inprocess.run(["--db", str(db), "report", "--out", str(out), *WINDOW], env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "_target" not in out.read_text().splitlines()[0]
