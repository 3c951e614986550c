"""A service+environment's baseline deployment (deployment_baselines.is_baseline) is its first by
deployed_at, then by id: the view finds it with one aggregate per scope instead of numbering every
deployment of the scope (row_number), and must pick the same one, ties included.

The store is written the way the tests' stores are (an open_writer unit) with deployments whose
first instant is shared by two or three deployments, inserted in the opposite order of their ids
(so a pick by the first row seen, or by time alone, takes another one), a scope whose first
deployment failed, and one with a single deployment.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from analytics.metrics.engine import MetricsQuery, apply_settings, compute_metrics
from analytics.store.connection import open_writer
from tests.metrics_queries import reader

DEPLOYMENTS = """
INSERT INTO deployments (id, service, environment, revision, repository, deployed_at, status, source)
VALUES
    -- api/production: three at the first instant, inserted z, m, a (a is the first by id)
    ('api-z', 'api', 'production', 'r1', 'api', TIMESTAMPTZ '2024-01-01 10:00:00+00', 'success', 'import'),
    ('api-m', 'api', 'production', 'r1', 'api', TIMESTAMPTZ '2024-01-01 10:00:00+00', 'success', 'import'),
    ('api-a', 'api', 'production', 'r1', 'api', TIMESTAMPTZ '2024-01-01 10:00:00+00', 'failed', 'import'),
    ('api-0', 'api', 'production', 'r2', 'api', TIMESTAMPTZ '2024-01-02 10:00:00+00', 'success', 'import'),
    -- api/staging: the earliest has the largest id
    ('api-s9', 'api', 'staging', 'r1', 'api', TIMESTAMPTZ '2023-12-31 09:00:00+00', 'success', 'import'),
    ('api-s1', 'api', 'staging', 'r2', 'api', TIMESTAMPTZ '2024-01-03 09:00:00+00', 'success', 'import'),
    -- web/production: the first failed; two share the second instant
    ('web-2', 'web', 'production', 'w1', 'web', TIMESTAMPTZ '2024-02-01 00:00:00+00', 'failed', 'import'),
    ('web-1', 'web', 'production', 'w2', 'web', TIMESTAMPTZ '2024-02-01 00:00:01+00', 'success', 'import'),
    ('web-0', 'web', 'production', 'w2', 'web', TIMESTAMPTZ '2024-02-01 00:00:01+00', 'success', 'import'),
    -- web/staging: one deployment
    ('web-s', 'web', 'staging', 'w1', 'web', TIMESTAMPTZ '2024-02-02 00:00:00+00', 'success', 'import');
"""
# The definition the view had: the first row of each scope numbered by (deployed_at, id).
ROW_NUMBER_BASELINES = """
SELECT id, row_number() OVER (PARTITION BY service, environment ORDER BY deployed_at, id) = 1
FROM deployments ORDER BY id
"""


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("baselines") / "store.duckdb"
    with open_writer(path, source="test-fixture") as session:
        session.con.execute(DEPLOYMENTS)
    return path


@pytest.fixture
def con(db: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    yield from reader(db)


def test_the_baseline_is_the_first_by_time_then_id(con: duckdb.DuckDBPyConnection) -> None:
    apply_settings(con)
    got = [tuple(r) for r in con.execute(
        "SELECT id, is_baseline FROM deployment_baselines ORDER BY id").fetchall()]
    assert got == [tuple(r) for r in con.execute(ROW_NUMBER_BASELINES).fetchall()]
    assert {i for i, baseline in got if baseline} == {"api-a", "api-s9", "web-2", "web-s"}
    # deployment_facts carries the same flag
    facts = {str(r[0]): bool(r[1])
             for r in con.execute("SELECT id, is_baseline FROM deployment_facts").fetchall()}
    assert facts == dict(got)


def test_the_report_counts_one_baseline_per_scope(con: duckdb.DuckDBPyConnection) -> None:
    report = compute_metrics(con, MetricsQuery(group_by=("service", "environment")))
    baselines = {(g["service"], g["environment"]): g["baseline_deployments"] for g in report.groups}
    # api/production's baseline (api-a) failed, so no successful deployment there is a baseline;
    # web/production's (web-2) failed too
    assert baselines == {("api", "production"): 0, ("api", "staging"): 1,
                         ("web", "production"): 0, ("web", "staging"): 1}


ODD_IDS = """
INSERT INTO deployments (id, service, environment, revision, repository, deployed_at, status, source)
VALUES
    -- pay/production: the first has no id (the column allows NULL); arg_min(id, ...) skipped it
    ('pay-b', 'pay', 'production', 'p2', 'pay', TIMESTAMPTZ '2024-01-02 00:00:00+00', 'success', 'import'),
    (NULL, 'pay', 'production', 'p1', 'pay', TIMESTAMPTZ '2024-01-01 00:00:00+00', 'success', 'import'),
    -- pay/staging: a NULL id ties with 'pay-s' at the first instant: NULLs sort last, as in ORDER BY
    (NULL, 'pay', 'staging', 'p1', 'pay', TIMESTAMPTZ '2024-01-01 00:00:00+00', 'success', 'import'),
    ('pay-s', 'pay', 'staging', 'p1', 'pay', TIMESTAMPTZ '2024-01-01 00:00:00+00', 'success', 'import'),
    -- ops/production: one id stored twice at the first instant; a join on the id marked both
    ('ops-1', 'ops', 'production', 'o1', 'ops', TIMESTAMPTZ '2024-03-01 00:00:00+00', 'success', 'import'),
    ('ops-1', 'ops', 'production', 'o1', 'ops', TIMESTAMPTZ '2024-03-01 00:00:00+00', 'success', 'import'),
    ('ops-2', 'ops', 'production', 'o2', 'ops', TIMESTAMPTZ '2024-03-02 00:00:00+00', 'success', 'import');
"""


def test_a_null_or_repeated_id_still_gives_one_baseline_the_first(tmp_path: Path) -> None:
    path = tmp_path / "odd.duckdb"
    with open_writer(path, source="test-fixture") as session:
        session.con.execute(ODD_IDS)
    for con in reader(path):
        apply_settings(con)
        got = con.execute(
            "SELECT service, environment, id, is_baseline FROM deployment_baselines "
            "ORDER BY service, environment, deployed_at, id NULLS LAST, is_baseline").fetchall()
    assert got == [
        ("ops", "production", "ops-1", False), ("ops", "production", "ops-1", True),
        ("ops", "production", "ops-2", False),
        ("pay", "production", None, True), ("pay", "production", "pay-b", False),
        ("pay", "staging", "pay-s", True), ("pay", "staging", None, False),
    ]
