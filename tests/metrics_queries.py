"""What the metrics speed tests share: the bench fixture's window, a config with a service in two
teams, the query shapes they compare, merged pull requests to add to the fixture, and the
engine's JSON for a query (the bytes the CLI prints)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from analytics.config import Config, Service
from analytics.json_output import dumps_bytes
from analytics.metrics.engine import MetricsQuery, compute_metrics
from analytics.store.connection import open_reader

SINCE = datetime(2023, 1, 2, tzinfo=UTC)
UNTIL = datetime(2025, 1, 6, tzinfo=UTC)

# svc-001 is in two teams (grouped by team it counts in each)
CONFIG = Config(services=[Service(name="svc-001", team="team-01", teams=["team-02"])])
QUERIES: dict[str, MetricsQuery] = {
    "trend week": MetricsQuery(since=SINCE, until=UNTIL, trend="week"),
    "whole window": MetricsQuery(since=SINCE, until=UNTIL),
    "by team, month": MetricsQuery(since=SINCE, until=UNTIL, trend="month", group_by=("team", "environment")),
    "service filter, previous": MetricsQuery(since=datetime(2024, 4, 1, tzinfo=UTC),
                                             until=datetime(2024, 7, 1, tzinfo=UTC),
                                             services=("svc-003", "svc-004"), compare_previous=True),
    "default window, committer": MetricsQuery(group_by=("repository",), lead_time_start="committer"),
}


def pull_requests_sql(incident_numbers: int) -> str:
    """Merged PRs for a ninth of the commits: hotfix branches and labels, and titles naming one of
    ``incident_numbers`` incidents (``Fix INC-n``)."""
    return f"""
INSERT INTO pull_requests (repo, number, provider, title, author, state, created_at, first_commit_at,
                           first_review_at, merged_at, merge_commit_sha, head_ref, labels, commit_shas)
SELECT c.repo, row_number() OVER (ORDER BY c.repo, c.sha), 'github',
       CASE WHEN hash(c.sha) % 5 = 0 THEN 'Fix INC-' || (hash(c.sha) % {incident_numbers})
            ELSE 'Change ' || c.sha END,
       'dev', 'merged', c.author_time - INTERVAL 3 HOUR, c.author_time - INTERVAL 5 HOUR,
       c.author_time - INTERVAL 1 HOUR, c.author_time, c.sha,
       CASE WHEN hash(c.sha) % 7 = 0 THEN 'hotfix/' || c.sha ELSE 'feature/' || c.sha END,
       CASE WHEN hash(c.sha) % 11 = 0 THEN ['hotfix'] ELSE ['feature'] END,
       [c.sha]
FROM commits c
WHERE hash(c.sha) % 9 = 0;
"""


def payload(con: duckdb.DuckDBPyConnection, query: MetricsQuery) -> bytes:
    return dumps_bytes(compute_metrics(con, query, CONFIG).payload())


def reader(db: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A reader on ``db`` for a fixture to yield from, closed afterwards."""
    con = open_reader(db)
    try:
        yield con
    finally:
        con.close()
