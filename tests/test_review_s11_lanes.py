"""Review (session 11, R1) of the metrics lanes (analytics/metrics/lanes.py): cases where the lanes
do not give what the serial engine (``compute_metrics(..., lanes=False)``) gives.

A DuckDB instance opened read-only (a native DuckDB file, ``duckdb.connect(path, read_only=True)``,
as bench/metrics_scale.py opens its native baseline) runs the serial engine's report (TEMP tables
are allowed there), but the lanes start with ``ATTACH ':memory:' AS gitops_dora_lane_N``, which a
read-only instance refuses ("Cannot launch in-memory database in read-only mode!"): the report
fails instead of falling back to the serial engine, as lanes.py does for the other connections it
cannot run on. Fixed: lanes.run returns None (the serial engine) when the ATTACH is refused.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from analytics.json_output import dumps_bytes
from analytics.metrics.engine import MetricsQuery, compute_metrics
from analytics.metrics.views import install_views
from analytics.store.connection import connect, open_writer
from bench.metrics_scale import fixture_sql
from tests.metrics_queries import CONFIG, QUERIES


@pytest.fixture(scope="module")
def native(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small store's tables copied into a native DuckDB file (as bench/metrics_scale.py does)."""
    folder = tmp_path_factory.mktemp("review_lanes")
    lake = folder / "store.ducklake"
    with open_writer(lake, source="test-fixture") as session:
        session.con.execute(fixture_sql(services=4, commits=400, deployments=60, incidents=20))
    path = folder / "native.duckdb"
    con = connect(lake, read_only=True)
    try:
        con.execute(f"ATTACH '{path}' AS native")
        for (table,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'lake'"
        ).fetchall():
            con.execute(f'CREATE TABLE native."{table}" AS SELECT * FROM lake."{table}"')
    finally:
        con.close()
    return path


@pytest.fixture
def read_only(native: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """The native file opened read-only with two DuckDB threads (so that the lanes are wanted)."""
    con = duckdb.connect(str(native), read_only=True, config={"threads": 2})
    try:
        con.execute("SET TimeZone = 'UTC'")
        install_views(con)
        yield con
    finally:
        con.close()


def test_a_read_only_duckdb_instance_gets_the_serial_engines_report(
    read_only: duckdb.DuckDBPyConnection,
) -> None:
    query = QUERIES["by team, month"]
    serial = dumps_bytes(compute_metrics(read_only, query, CONFIG, lanes=False).payload())
    assert any(g["deployments"] for g in json.loads(serial)["groups"])
    assert dumps_bytes(compute_metrics(read_only, query, CONFIG, lanes=True).payload()) == serial


def test_the_serial_engine_runs_on_the_read_only_instance(read_only: duckdb.DuckDBPyConnection) -> None:
    """The premise of the test above: the serial engine does run there, with deployments counted."""
    query = MetricsQuery(group_by=("service",))
    report = compute_metrics(read_only, query, CONFIG, lanes=False)
    groups = json.loads(dumps_bytes(report.payload()))["groups"]
    assert sum(g["deployments"] for g in groups) > 0
