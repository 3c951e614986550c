"""The metric engine's speed-ups give the numbers of the plain definitions.

A store built with the ``bench/metrics_scale.py`` fixture SQL at a small scale (20 services, 2,000
deployments, 20,000 commits: failed attempts, rollbacks, reverts, hotfix commits, incidents with
and without a root cause) plus merged PRs (hotfix branches and labels, titles naming incidents).
Each test computes the same figures two ways:
* the engine as it runs, against the engine with no table copies and no once-per-report views
  (every view read straight from the store, the definition the copies stand in for);
* the throughput family (deployment and change counts aggregated apart) against one aggregate
  over deployments and their changes, as the family was written before;
* the stability views (one read of deployment_changes for every lookup) against lookups that each
  read deployment_changes, as the views were written before.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from analytics.metrics import engine
from analytics.metrics.engine import MetricsQuery
from analytics.store.connection import open_writer
from bench.metrics_scale import fixture_sql
from tests import metrics_queries
from tests.metrics_queries import SINCE, UNTIL, payload, pull_requests_sql, reader
from tests.s12_h4_reports import EngineResults

PULL_REQUESTS_SQL = pull_requests_sql(300)
QUERIES: dict[str, MetricsQuery] = {
    **metrics_queries.QUERIES,
    "team filter": MetricsQuery(since=SINCE, until=UNTIL, teams=("team-02",)),
}


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("speed") / "store.duckdb"
    with open_writer(path, source="test-fixture") as session:
        session.con.execute(fixture_sql(services=20, commits=20_000, deployments=2_000, incidents=300))
        session.con.execute(PULL_REQUESTS_SQL)
    return path


@pytest.fixture(scope="module")
def engine_as_is(db: Path) -> EngineResults:
    """The unpatched engine's result per query on ``db`` (which nothing writes to), computed by the
    first test that compares it and reused by the others: ``whole window`` is compared in four tests,
    ``by team, month`` in two (tests/s12_h4_reports.py)."""
    return EngineResults()


@pytest.fixture
def con(db: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    yield from reader(db)


@pytest.mark.parametrize("name", list(QUERIES))
def test_copies_and_once_per_report_views_change_no_number(
    con: duckdb.DuckDBPyConnection, engine_as_is: EngineResults, monkeypatch: pytest.MonkeyPatch, name: str,
) -> None:
    query = QUERIES[name]
    fast = engine_as_is.payload(con, query, run=True)  # its copies are looked for on con below
    monkeypatch.setattr(engine, "COPIED_TABLES", ())
    monkeypatch.setattr(engine, "COPIED_WHEN_SMALL", {})
    monkeypatch.setattr(engine, "COPIED_WHEN_FEW_DEPLOYMENTS", {})
    monkeypatch.setattr(engine, "SHARED_VIEWS", ())
    straight = payload(con, query)
    assert b'"deployments":' in fast
    assert any(g["prs_deployed"] for g in json.loads(fast)["groups"])  # the copied PRs count
    assert fast == straight
    # the copies are gone afterwards: the views read the store again
    temp = con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = 'temp'").fetchall()
    assert not {"deployments", "services", "incidents", "pull_requests", "commits", "deployment_changes"} & {
        str(r[0]) for r in temp}


def test_pull_requests_are_copied_only_within_their_limit(
    con: duckdb.DuckDBPyConnection, engine_as_is: EngineResults, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """pull_requests is copied for the report while small; above the limit the views read the
    store (no copy), with the same numbers either way."""
    query = QUERIES["by team, month"]
    copied = engine_as_is.payload(con, query)
    prs = int(con.execute("SELECT count(*) FROM pull_requests").fetchone()[0])  # type: ignore[index]
    assert 0 < prs <= engine.COPIED_WHEN_SMALL["pull_requests"]
    database = str(con.execute("SELECT current_database()").fetchone()[0])  # type: ignore[index]
    assert "pull_requests" in engine.small_tables(con, database, deployments_copied=False)
    monkeypatch.setattr(engine, "COPIED_WHEN_SMALL", {**engine.COPIED_WHEN_SMALL, "pull_requests": prs - 1})
    assert "pull_requests" not in engine.small_tables(con, database, deployments_copied=False)
    assert payload(con, query) == copied



@pytest.mark.parametrize("name", ["whole window", "team filter", "default window, committer", "three days"])
def test_one_period_without_the_asof_join_changes_no_number(
    con: duckdb.DuckDBPyConnection, engine_as_is: EngineResults, monkeypatch: pytest.MonkeyPatch, name: str,
) -> None:
    """A window of one period scopes each family with the period as literals instead of the ASOF
    join to metric_periods: the same rows, periods and numbers as the join gives."""
    query = QUERIES.get(name) or MetricsQuery(  # a window within one week, with a weekly trend
        since=datetime(2024, 3, 5, 6, 30, tzinfo=UTC), until=datetime(2024, 3, 8, tzinfo=UTC),
        trend="week", group_by=("team", "service"))
    spans = engine.periods(engine.data_window(con, query), query.trend)
    assert engine._single_period(spans) is not None
    literal = engine_as_is.payload(con, query)
    monkeypatch.setattr(engine, "_single_period", lambda spans: None)
    joined = payload(con, query)
    groups = json.loads(literal)["groups"]
    assert any(g["deployments"] for g in groups)
    assert name == "three days" or any(g["incidents"] for g in groups)
    assert literal == joined

# The throughput family as one aggregate over deployments stacked with their changes (before).
THROUGHPUT_ONE_AGGREGATE = """
WITH successful_deployments AS (
    SELECT * FROM deployment_baselines
    WHERE counts_as_deployment AND deployed_at >= ? AND deployed_at < ?
),
measured_rows AS (
    SELECT service, environment, true AS is_deployment_row, deployed_day, is_baseline,
           NULL::VARCHAR AS sha, NULL::DOUBLE AS lead_hours, false AS is_negative,
           false AS counts_for_lead_time
    FROM successful_deployments
    UNION ALL
    SELECT d.service, d.environment, false, NULL::DATE, l.is_baseline, l.sha, l.lead_hours, l.is_negative,
           l.counts_for_lead_time
    FROM successful_deployments d
    JOIN change_lead_times l ON l.deployment_id = d.id
)
SELECT service, environment,
       count(*) FILTER (WHERE is_deployment_row) AS deployments,
       count(DISTINCT deployed_day) AS deployment_days,
       count(sha) AS changes,
       quantile_cont(lead_hours, 0.5) FILTER (WHERE counts_for_lead_time) AS lead_time_median_hours,
       quantile_cont(lead_hours, 0.9) FILTER (WHERE counts_for_lead_time) AS lead_time_p90_hours,
       count(sha) FILTER (WHERE is_negative AND NOT is_baseline) AS excluded_negative_lead_times,
       count(*) FILTER (WHERE is_deployment_row AND is_baseline) AS baseline_deployments,
       count(sha) FILTER (WHERE is_baseline) AS baseline_changes
FROM measured_rows
GROUP BY service, environment
ORDER BY service, environment
"""
THROUGHPUT_COLUMNS = ("deployments", "deployment_days", "changes", "lead_time_median_hours",
                      "lead_time_p90_hours", "excluded_negative_lead_times", "baseline_deployments",
                      "baseline_changes")


def test_throughput_matches_one_aggregate_over_deployments_and_changes(
    con: duckdb.DuckDBPyConnection, engine_as_is: EngineResults,
) -> None:
    groups = engine_as_is.report(con, QUERIES["whole window"]).groups
    engine.apply_settings(con)
    expected = con.execute(THROUGHPUT_ONE_AGGREGATE, [SINCE, UNTIL]).fetchall()
    by_key = {(g["service"], g["environment"]): g for g in groups}
    assert len(expected) == 20
    assert sum(g["changes"] for g in groups) > 10_000
    for row in expected:
        group = by_key.pop(row[:2])
        got = tuple(group[c] for c in THROUGHPUT_COLUMNS)
        assert got == pytest.approx(row[2:], rel=1e-12)
    # the other groups have only incidents: no deployment
    assert by_key and all(g["deployments"] == 0 and g["changes"] == 0 for g in by_key.values())


# The stability lookups as they were written before: each reads deployment_changes.
REVERT_SIGNALS_DIRECT = """
WITH genuine_reverts AS (SELECT repo, sha, reverts_sha FROM revert_chain WHERE is_genuine_revert),
genuine_revert_changes AS (
    SELECT dc.deployment_id AS reverting_deployment_id, dc.repo, dc.sha AS revert_sha, rc.reverts_sha
    FROM deployment_changes dc JOIN genuine_reverts rc ON rc.repo = dc.repo AND rc.sha = dc.sha
),
reverted_deployments AS (
    SELECT reverted.id AS deployment_id, reverting.id AS reverting_id, g.revert_sha
    FROM genuine_revert_changes g
    JOIN deployment_changes dc ON dc.repo = g.repo AND dc.sha = g.reverts_sha
    JOIN deployments reverted ON reverted.id = dc.deployment_id
    JOIN deployments reverting ON reverting.id = g.reverting_deployment_id
    WHERE reverting.service = reverted.service AND reverting.environment = reverted.environment
      AND reverting.deployed_at > reverted.deployed_at
)
SELECT deployment_id, list(DISTINCT revert_sha ORDER BY revert_sha) FROM reverted_deployments
GROUP BY deployment_id ORDER BY deployment_id
"""
REWORK_DIRECT = """
WITH genuine_reverts AS (SELECT repo, sha, reverts_sha FROM revert_chain WHERE is_genuine_revert),
revert_rework AS (
    SELECT DISTINCT dc.deployment_id, 'revert' AS reason
    FROM deployment_changes dc JOIN genuine_reverts rc ON rc.repo = dc.repo AND rc.sha = dc.sha
    WHERE NOT EXISTS (SELECT 1 FROM deployment_changes same WHERE same.deployment_id = dc.deployment_id
                      AND same.repo = rc.repo AND same.sha = rc.reverts_sha)
),
hotfix_commit_rework AS (
    SELECT DISTINCT dc.deployment_id, 'hotfix' AS reason
    FROM commits c JOIN deployment_changes dc ON dc.repo = c.repo AND dc.sha = c.sha
    WHERE regexp_matches(coalesce(c.subject, ''), getvariable('gitops_dora_hotfix_pattern'))
),
deployed_pull_requests AS (
    SELECT DISTINCT dc.deployment_id, pr.title, pr.labels, pr.head_ref
    FROM pull_requests pr JOIN deployment_changes dc ON dc.repo = pr.repo AND dc.sha = pr.merge_commit_sha
    WHERE pr.merged_at IS NOT NULL
),
hotfix_pr_rework AS (
    SELECT DISTINCT deployment_id, 'hotfix' AS reason FROM deployed_pull_requests
    WHERE regexp_matches(coalesce(head_ref, ''), getvariable('gitops_dora_hotfix_pattern'))
       OR list_bool_or(list_transform(coalesce(labels, []),
                                      lambda l: regexp_matches(l, getvariable('gitops_dora_hotfix_pattern'))))
),
incident_pr_rework AS (
    SELECT DISTINCT p.deployment_id, 'incident_reference' AS reason
    FROM deployed_pull_requests p
    JOIN (SELECT DISTINCT lower(id) AS incident_key FROM incidents) i
      ON list_contains(regexp_extract_all(lower(p.title), '[a-z0-9][a-z0-9_.#/-]*[a-z0-9]'), i.incident_key)
),
rollback_rework AS (SELECT id AS deployment_id, 'rollback' AS reason FROM deployments WHERE is_rollback)
SELECT deployment_id, list(DISTINCT reason ORDER BY reason)
FROM (SELECT * FROM revert_rework UNION ALL SELECT * FROM hotfix_commit_rework
      UNION ALL SELECT * FROM hotfix_pr_rework UNION ALL SELECT * FROM incident_pr_rework
      UNION ALL SELECT * FROM rollback_rework)
GROUP BY deployment_id ORDER BY deployment_id
"""


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in con.execute(sql).fetchall()]


def test_stability_lookups_match_reading_deployment_changes_for_each(
    con: duckdb.DuckDBPyConnection,
) -> None:
    engine.apply_settings(con)
    reverts = _rows(con, "SELECT deployment_id, evidence FROM failure_signals WHERE signal = 'revert'"
                         " ORDER BY deployment_id")
    assert len(reverts) > 10
    assert reverts == _rows(con, REVERT_SIGNALS_DIRECT)
    rework = _rows(con, "SELECT id, rework_reasons FROM deployment_outcomes WHERE is_rework ORDER BY id")
    reasons = {reason for _, listed in rework for reason in listed}
    assert reasons == {"hotfix", "incident_reference", "revert", "rollback"}
    assert rework == _rows(con, REWORK_DIRECT)


# The PR breakdown's change counts and the deployment-frequency medians, straight from the views.
PR_COUNTS_DIRECT = """
SELECT l.service, l.environment,
       count(*) AS counted,
       count(p.pr_number) AS with_pr,
       count(DISTINCT (l.deployment_id, l.repo, p.pr_number)) FILTER (WHERE p.pr_number IS NOT NULL) AS prs
FROM change_lead_times l
LEFT JOIN change_pull_requests p ON p.repo = l.repo AND p.sha = l.sha
WHERE l.counts_for_lead_time AND l.status = 'success' AND l.deployed_at >= ? AND l.deployed_at < ?
GROUP BY ALL ORDER BY ALL
"""
DEPLOYMENT_DAYS_DIRECT = """
SELECT service, environment, deployed_day, deployed_at
FROM deployment_times
WHERE counts_as_deployment AND deployed_at >= ? AND deployed_at < ?
"""


def test_pr_counts_and_frequency_medians_match_the_views(
    con: duckdb.DuckDBPyConnection, engine_as_is: EngineResults,
) -> None:
    from statistics import median

    report = engine_as_is.report(con, QUERIES["whole window"])
    groups = {(g["service"], g["environment"]): g for g in report.groups}
    engine.apply_settings(con)
    expected = con.execute(PR_COUNTS_DIRECT, [SINCE, UNTIL]).fetchall()
    assert len(expected) == 20 and sum(r[4] for r in expected) > 100
    for service, environment, counted, with_pr, prs in expected:
        group = groups[(service, environment)]
        assert (group["changes_with_pr"], group["changes_without_pr"], group["prs_deployed"]) == (
            with_pr, counted - with_pr, prs)
    # deployment days per whole 7-day block from the window start (735 days: 105 blocks), empty
    # blocks as 0; deployments per whole 30-day block (24 blocks, the last 15 days left out)
    days: dict[tuple[str, str], list[set[Any]]] = {}
    months: dict[tuple[str, str], list[int]] = {}
    for service, environment, day, at in con.execute(DEPLOYMENT_DAYS_DIRECT, [SINCE, UNTIL]).fetchall():
        seconds = (at - SINCE).total_seconds()
        weeks = days.setdefault((service, environment), [set() for _ in range(105)])
        weeks[int(seconds // (7 * 86400))].add(day)
        block = int(seconds // (30 * 86400))
        if block < 24:
            months.setdefault((service, environment), [0] * 24)[block] += 1
    assert len(days) == 20
    for key, blocks in days.items():
        assert groups[key]["deployment_days_per_week_median"] == median(len(w) for w in blocks)
        assert groups[key]["deployments_per_month_median"] == median(months[key])
