"""PR breakdown of a service in several teams: each team counts the service's PRs.

Grouped by team, a service the config puts in two teams has one scoped row per team for each of
its deployments. The PR representative (one per PR and deployment) was picked over both rows, so
an arbitrary team got each PR and the split changed with the query plan; it is now picked per team.
All times UTC.
    shop (teams web, payments)  production  S0 2026-01-05 10:00 c0 (baseline)
                                            S1 2026-01-06 10:00 c1 (PR #1, merge commit), c2 (trunk)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from analytics.config import Config, Service
from analytics.metrics.engine import MetricsQuery, compute_metrics
from analytics.store.connection import open_reader, open_writer
from tests.store_fixture import Deploy, utc, write_history


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = write_history(
        tmp_path_factory.mktemp("pr_teams") / "store.duckdb",
        services={"shop": "web"},
        commits={"c0": ("shop-repo", "2026-01-04T10:00"), "c1": ("shop-repo", "2026-01-06T06:00"),
                 "c2": ("shop-repo", "2026-01-06T08:00")},
        deployments={
            "S0": Deploy("shop", "shop-repo", "2026-01-05T10:00", ["c0"]),
            "S1": Deploy("shop", "shop-repo", "2026-01-06T10:00", ["c1", "c2"]),
        },
    )
    with open_writer(path, source="test-fixture") as w:
        w.upsert("pull_requests", [{
            "repo": "shop-repo", "number": 1, "provider": "github", "title": "Checkout", "state": "merged",
            "created_at": utc("2026-01-06T04:00"), "first_commit_at": utc("2026-01-06T02:00"),
            "first_review_at": utc("2026-01-06T05:00"), "merged_at": utc("2026-01-06T06:00"),
            "merge_commit_sha": "c1", "commit_shas": ["c1"],
        }])
    return path


def test_each_team_counts_the_pr_once(db: Path) -> None:
    config = Config(services=[Service(name="shop", team="web", teams=["payments"])])
    con = open_reader(db)
    try:
        query = MetricsQuery(since=utc("2026-01-05T00:00"), until=utc("2026-01-12T00:00"), group_by=("team",))
        report = compute_metrics(con, query, config)
    finally:
        con.close()
    by_team = {g["team"]: g for g in report.groups}
    assert sorted(by_team) == ["payments", "web"]
    for group in by_team.values():
        # PR #1: coding 02:00 -> 04:00 = 2 h, pickup 04:00 -> 05:00 = 1 h, review 05:00 -> 06:00 = 1 h,
        # deploy 06:00 -> 10:00 = 4 h
        assert group["prs_deployed"] == 1
        assert group["pr_coding_median_hours"] == pytest.approx(2.0)
        assert group["pr_deploy_median_hours"] == pytest.approx(4.0)
        assert (group["changes_with_pr"], group["changes_without_pr"]) == (1, 1)
        assert group["deployments"] == 2
