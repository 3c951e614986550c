"""Throughput metrics (deployment frequency, lead time) on a hand-made store, values worked by hand.

The store is a real DuckDB file loaded through the store's own loader (``WriteSession.upsert``),
so every deployment and commit time is exact. All times UTC.

Service pay (team payments, repo pay-repo), environment production:
    D0  2026-01-05 10:00  success  c1 (author 01-01 10:00)                 baseline (first ever)
    D1  2026-01-07 12:00  success  c2 (author 01-06 12:00) -> 24 h
                                   c3 (author 01-07 02:00) -> 10 h
    DF  2026-01-10 09:00  FAILED   c7 (author 01-09 09:00)                 not counted
    D2  2026-01-14 00:00  success  c4 (author 01-13 06:00) -> 18 h; committer 01-13 18:00 -> 6 h
    D3  2026-01-14 06:00  success  c5 (author 01-14 08:00) -> -2 h (negative: excluded, counted)
                                   c6 (author 01-12 06:00) -> 48 h
    D4  2026-02-10 10:00  success  c8 (author 02-09 10:00) -> 24 h
Service pay, environment staging:
    S0  2026-01-06 09:00  success  c1                                      baseline
    S1  2026-01-13 12:00  success  c9 (author 01-12 00:00) -> 36 h
Service shop (team web, repo shop-repo), environment production:
    H0  2026-01-20 10:00  success  s1 (author 01-19 10:00)                 baseline
    H1  2026-01-21 10:00  success  s2 (author 01-21 04:00) -> 6 h
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from analytics.config import Config, DeploymentSources
from analytics.metrics.engine import MetricsQuery, compute_metrics
from analytics.store.connection import open_reader, open_writer
from tests.store_fixture import Deploy, write_history

CLI = str(Path(sys.executable).parent / "gitops-dora")


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


COMMITS = {  # sha: (repo, author time, committer time)
    "c1": ("pay-repo", "2026-01-01T10:00", None),
    "c2": ("pay-repo", "2026-01-06T12:00", None),
    "c3": ("pay-repo", "2026-01-07T02:00", None),
    "c4": ("pay-repo", "2026-01-13T06:00", "2026-01-13T18:00"),
    "c5": ("pay-repo", "2026-01-14T08:00", None),
    "c6": ("pay-repo", "2026-01-12T06:00", None),
    "c7": ("pay-repo", "2026-01-09T09:00", None),
    "c8": ("pay-repo", "2026-02-09T10:00", None),
    "c9": ("pay-repo", "2026-01-12T00:00", None),
    "s1": ("shop-repo", "2026-01-19T10:00", None),
    "s2": ("shop-repo", "2026-01-21T04:00", None),
}
DEPLOYMENTS = {
    "D0": Deploy("pay", "pay-repo", "2026-01-05T10:00", ["c1"]),
    "D1": Deploy("pay", "pay-repo", "2026-01-07T12:00", ["c2", "c3"]),
    "DF": Deploy("pay", "pay-repo", "2026-01-10T09:00", ["c7"], status="failed"),
    "D2": Deploy("pay", "pay-repo", "2026-01-14T00:00", ["c4"]),
    "D3": Deploy("pay", "pay-repo", "2026-01-14T06:00", ["c5", "c6"]),
    "D4": Deploy("pay", "pay-repo", "2026-02-10T10:00", ["c8"]),
    "S0": Deploy("pay", "pay-repo", "2026-01-06T09:00", ["c1"], environment="staging"),
    "S1": Deploy("pay", "pay-repo", "2026-01-13T12:00", ["c9"], environment="staging"),
    "H0": Deploy("shop", "shop-repo", "2026-01-20T10:00", ["s1"]),
    "H1": Deploy("shop", "shop-repo", "2026-01-21T10:00", ["s2"]),
}


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_history(
        tmp_path_factory.mktemp("throughput") / "store.duckdb",
        services={"pay": "payments", "shop": "web"},
        environments={"production": True, "staging": False},
        commits=COMMITS,
        deployments=DEPLOYMENTS,
    )


def metrics(db: Path, *, config: Config | None = None, **kwargs: Any) -> list[dict[str, Any]]:
    con = open_reader(db)
    try:
        return compute_metrics(con, MetricsQuery(**kwargs), config).groups
    finally:
        con.close()


def one(groups: list[dict[str, Any]], **keys: Any) -> dict[str, Any]:
    hits = [g for g in groups if all(g.get(k) == v for k, v in keys.items())]
    assert len(hits) == 1, (keys, groups)
    return hits[0]


JAN: dict[str, Any] = {"since": t("2026-01-01T00:00"), "until": t("2026-02-01T00:00")}


def test_january_production_counts_medians_baseline_and_negative(db: Path) -> None:
    g = one(metrics(db, **JAN), service="pay", environment="production")
    # D0, D1, D2, D3 succeed in January; DF failed and is not a deployment for throughput.
    assert g["deployments"] == 4
    assert g["deployment_days"] == 3                     # 01-05, 01-07, 01-14 (D2 and D3 share a day)
    assert g["deployments_per_week"] == pytest.approx(4 * 7 / 31)
    assert g["changes"] == 6                             # 1 + 2 + 1 + 2
    # lead times: D1 24, 10; D2 18; D3 48 (c5 negative excluded); D0 baseline excluded
    # sorted 10, 18, 24, 48 -> even count: median = (18 + 24) / 2 = 21
    assert g["lead_time_median_hours"] == pytest.approx(21.0)
    # p90 continuous: position 0.9 * (4 - 1) = 2.7 -> 24 + 0.7 * (48 - 24) = 40.8
    assert g["lead_time_p90_hours"] == pytest.approx(40.8)
    assert g["excluded_negative_lead_times"] == 1
    assert g["baseline_deployments"] == 1
    assert g["baseline_changes"] == 1


def test_window_edge_exactly_on_a_deployment(db: Path) -> None:
    # [01-07, 01-14): D2 at exactly 01-14 00:00 is outside (half-open); only D1 is in.
    g = one(metrics(db, since=t("2026-01-07T00:00"), until=t("2026-01-14T00:00")),
            service="pay", environment="production")
    assert g["deployments"] == 1
    assert g["lead_time_median_hours"] == pytest.approx(17.0)   # (10 + 24) / 2
    assert g["lead_time_p90_hours"] == pytest.approx(22.6)      # 10 + 0.9 * (24 - 10)
    # [01-14, 01-15): D2 at exactly since is inside, with D3.
    g = one(metrics(db, since=t("2026-01-14T00:00"), until=t("2026-01-15T00:00")),
            service="pay", environment="production")
    assert g["deployments"] == 2
    assert g["deployment_days"] == 1
    assert g["lead_time_median_hours"] == pytest.approx(33.0)   # (18 + 48) / 2
    assert g["lead_time_p90_hours"] == pytest.approx(45.0)      # 18 + 0.9 * (48 - 18)
    assert g["excluded_negative_lead_times"] == 1
    assert g["baseline_deployments"] == 0


def test_committer_time_option_and_config(db: Path) -> None:
    # c4 starts at its committer time 01-13 18:00 -> 6 h; others unchanged: 6, 10, 24, 48
    g = one(metrics(db, lead_time_start="committer", **JAN), service="pay", environment="production")
    assert g["lead_time_median_hours"] == pytest.approx(17.0)   # (10 + 24) / 2
    assert g["lead_time_p90_hours"] == pytest.approx(40.8)      # 24 + 0.7 * (48 - 24)
    config = Config(deployments=DeploymentSources(lead_time_start="committer"))
    g = one(metrics(db, config=config, **JAN), service="pay", environment="production")
    assert g["lead_time_median_hours"] == pytest.approx(17.0)
    # the option wins over the config
    both = metrics(db, config=config, lead_time_start="author", **JAN)
    g = one(both, service="pay", environment="production")
    assert g["lead_time_median_hours"] == pytest.approx(21.0)


def test_group_by_service_environment_team_repository(db: Path) -> None:
    groups = metrics(db, **JAN)
    assert [(g["service"], g["environment"]) for g in groups] == [
        ("pay", "production"), ("pay", "staging"), ("shop", "production")]
    staging = one(groups, service="pay", environment="staging")
    assert (staging["deployments"], staging["baseline_deployments"]) == (2, 1)
    assert staging["lead_time_median_hours"] == pytest.approx(36.0)   # only S1: c9 36 h
    shop = one(groups, service="shop")
    assert (shop["deployments"], shop["lead_time_median_hours"]) == (2, pytest.approx(6.0))

    by_team = metrics(db, group_by=("team",), **JAN)
    assert [g["team"] for g in by_team] == ["payments", "web"]
    assert "service" not in by_team[0]
    payments = by_team[0]
    assert payments["deployments"] == 6                     # 4 production + 2 staging
    assert payments["changes"] == 8                         # 6 + 2
    # 10, 18, 24, 36, 48 -> median 24; p90 at 3.6 -> 36 + 0.6 * 12 = 43.2
    assert payments["lead_time_median_hours"] == pytest.approx(24.0)
    assert payments["lead_time_p90_hours"] == pytest.approx(43.2)

    by_env = metrics(db, group_by=("environment",), **JAN)
    production = one(by_env, environment="production")
    # pay 10, 18, 24, 48 + shop 6 -> 6, 10, 18, 24, 48: median 18; p90 at 3.6 -> 24 + 0.6 * 24 = 38.4
    assert production["deployments"] == 6
    assert production["baseline_deployments"] == 2
    assert production["lead_time_median_hours"] == pytest.approx(18.0)
    assert production["lead_time_p90_hours"] == pytest.approx(38.4)

    by_repo = metrics(db, group_by=("repository",), **JAN)
    assert [(g["repository"], g["deployments"]) for g in by_repo] == [("pay-repo", 6), ("shop-repo", 2)]


def test_filters(db: Path) -> None:
    groups = metrics(db, teams=("web",), **JAN)
    assert [g["service"] for g in groups] == ["shop"]
    groups = metrics(db, services=("pay",), environments=("staging",), **JAN)
    assert [(g["service"], g["environment"]) for g in groups] == [("pay", "staging")]


def test_trend_week_fills_empty_weeks_and_clips_edges(db: Path) -> None:
    groups = metrics(db, trend="week", services=("pay",), environments=("production",), **JAN)
    # ISO weeks start on Monday; 2026-01-01 is a Thursday, so the first and last periods are clipped.
    spans = [(g["period_start"].date().isoformat(), g["period_end"].date().isoformat()) for g in groups]
    assert spans == [("2026-01-01", "2026-01-05"), ("2026-01-05", "2026-01-12"),
                     ("2026-01-12", "2026-01-19"), ("2026-01-19", "2026-01-26"),
                     ("2026-01-26", "2026-02-01")]
    assert [g["deployments"] for g in groups] == [0, 2, 2, 0, 0]
    assert [g["deployments_per_week"] for g in groups] == [0, 2.0, 2.0, 0, 0]
    assert groups[1]["lead_time_median_hours"] == pytest.approx(17.0)   # D1: 10, 24
    assert groups[1]["baseline_deployments"] == 1
    assert groups[2]["lead_time_median_hours"] == pytest.approx(33.0)   # D2 18, D3 48
    assert groups[2]["excluded_negative_lead_times"] == 1
    assert groups[0]["lead_time_median_hours"] is None


def test_trend_month_rates_use_clipped_period_length(db: Path) -> None:
    groups = metrics(db, trend="month", services=("pay",), environments=("production",),
                     since=t("2026-01-10T00:00"), until=t("2026-03-01T00:00"))
    # [01-10, 02-01) is 22 days: D2, D3 (DF failed) -> 2 * 7 / 22; February (28 days): D4 -> 7 / 28
    assert [g["deployments"] for g in groups] == [2, 1]
    assert groups[0]["deployments_per_week"] == pytest.approx(14 / 22)
    assert groups[1]["deployments_per_week"] == pytest.approx(0.25)
    assert groups[1]["lead_time_median_hours"] == pytest.approx(24.0)


def test_compare_previous(db: Path) -> None:
    g = one(metrics(db, compare_previous=True, since=t("2026-01-12T00:00"), until=t("2026-01-19T00:00")),
            service="pay", environment="production")
    # current [01-12, 01-19): D2, D3 -> 2 deployments on 1 day, median 33
    # previous [01-05, 01-12): D0, D1 -> 2 deployments on 2 days, median 17 (D0 is the baseline)
    assert (g["deployments"], g["previous"]["deployments"], g["delta"]["deployments"]) == (2, 2, 0)
    assert g["delta"]["deployment_days"] == -1
    assert g["previous"]["lead_time_median_hours"] == pytest.approx(17.0)
    assert g["delta"]["lead_time_median_hours"] == pytest.approx(16.0)
    assert g["previous"]["baseline_deployments"] == 1


def test_default_window_is_first_deployment_day_to_day_after_last(db: Path) -> None:
    con = open_reader(db)
    try:
        report = compute_metrics(con, MetricsQuery())
    finally:
        con.close()
    assert (report.since, report.until) == (t("2026-01-05T00:00"), t("2026-02-11T00:00"))
    assert one(report.groups, service="pay", environment="production")["deployments"] == 5


def run_cli(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "GITOPS_DORA_DB"}
    return subprocess.run([CLI, "--db", str(db), *args], capture_output=True, text=True, env=env, timeout=120)


def test_metrics_cli_json_and_csv(db: Path) -> None:
    proc = run_cli(db, "metrics", "--since", "2026-01-01", "--until", "2026-02-01T00:00:00Z",
                   "--lead-time-start", "committer", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["since"] == "2026-01-01T00:00:00Z" and doc["until"] == "2026-02-01T00:00:00Z"
    pay = one(doc["groups"], service="pay", environment="production")
    assert pay["lead_time_median_hours"] == pytest.approx(17.0)
    assert any("baseline" in note for note in doc["notes"])

    proc = run_cli(db, "metrics", "--since", "2026-01-01", "--until", "2026-02-01", "--group-by", "team",
                   "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert [(r["team"], r["deployments"]) for r in rows] == [("payments", "6"), ("web", "2")]


def test_metrics_cli_rejects_bad_options(db: Path) -> None:
    for args, expected in (
        (("--group-by", "service,colour"), "--group-by"),
        (("--trend", "fortnight"), "--trend"),
        (("--lead-time-start", "merge"), "--lead-time-start"),
        (("--since", "2026-02-01", "--until", "2026-01-01"), "--until"),
    ):
        proc = run_cli(db, "metrics", *args)
        assert proc.returncode == 2, args
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], proc.stderr


def test_merged_pr_start_is_preferred_for_its_merge_commit(tmp_path: Path) -> None:
    """A squash-merged PR starts at its first commit, not at the squash commit's author time.

        P0  2026-03-01 00:00  baseline      p0
        P1  2026-03-03 10:00  success       sq (author 03-02 10:00 -> 24 h; PR #7 first commit
                                            03-01 10:00 -> 48 h)   and   x (author 03-03 04:00 -> 6 h;
                                            PR #8 names x but was never merged: ignored)
    Lead times 48 and 6 -> median (6 + 48) / 2 = 27; without the PR start it would be 15.
    """
    db = tmp_path / "pr.duckdb"
    with open_writer(db, source="test-fixture") as w:
        w.upsert("commits", [
            {"repo": "r", "sha": sha, "parents": [], "author_time": t(at), "committer_time": t(at),
             "is_merge": False}
            for sha, at in (("p0", "2026-02-20T00:00"), ("sq", "2026-03-02T10:00"), ("x", "2026-03-03T04:00"))
        ])
        w.upsert("deployments", [
            {"id": "P0", "service": "s", "environment": "production", "deployed_at": t("2026-03-01T00:00"),
             "status": "success", "source": "test"},
            {"id": "P1", "service": "s", "environment": "production", "deployed_at": t("2026-03-03T10:00"),
             "status": "success", "source": "test"},
        ])
        w.upsert("deployment_changes", [{"deployment_id": d, "repo": "r", "sha": sha}
                                        for d, sha in (("P0", "p0"), ("P1", "sq"), ("P1", "x"))])
        w.upsert("pull_requests", [
            {"repo": "r", "number": 7, "provider": "github", "merged_at": t("2026-03-02T10:00"),
             "merge_commit_sha": "sq", "first_commit_at": t("2026-03-01T10:00")},
            {"repo": "r", "number": 8, "provider": "github", "merged_at": None,
             "merge_commit_sha": "x", "first_commit_at": t("2026-02-01T00:00")},
        ])
    g = one(metrics(db, since=t("2026-03-01T00:00"), until=t("2026-03-04T00:00")), service="s")
    assert g["lead_time_median_hours"] == pytest.approx(27.0)
    con = open_reader(db)
    try:
        starts = dict(con.execute("SELECT sha, start_source FROM change_lead_times").fetchall())
    finally:
        con.close()
    assert starts == {"p0": "author", "sq": "pr_first_commit", "x": "author"}


def test_periods_cross_year_and_default_window_edges() -> None:
    from analytics.metrics.window import Window, default_window, parse_instant, periods

    spans = periods(Window(t("2025-12-15T00:00"), t("2026-01-10T00:00")), "month")
    assert [(p.start, p.end, p.days) for p in spans] == [
        (t("2025-12-15T00:00"), t("2026-01-01T00:00"), 17.0),
        (t("2026-01-01T00:00"), t("2026-01-10T00:00"), 9.0)]
    # a window starting mid-day on a Monday: the first week is clipped to 6.5 days
    weeks = periods(Window(t("2026-01-05T12:00"), t("2026-01-19T00:00")), "week")
    assert [(p.start, p.days) for p in weeks] == [(t("2026-01-05T12:00"), 6.5), (t("2026-01-12T00:00"), 7.0)]
    # only --since given: up to the day after the last deployment
    first, last = t("2026-01-05T10:00"), t("2026-02-10T10:00")
    window = default_window(first, last, t("2026-02-01T00:00"), None)
    assert (window.since, window.until) == (t("2026-02-01T00:00"), t("2026-02-11T00:00"))
    # zoned input is converted to UTC
    assert parse_instant("2026-01-05T02:00:00+02:00", "--since") == t("2026-01-05T00:00")
