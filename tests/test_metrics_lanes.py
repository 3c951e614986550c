"""The report's families run on two connections at once (analytics/metrics/lanes.py) give the serial
engine's bytes, and leave the connection as they found it.

Each test reads a real store (the ``bench/metrics_scale.py`` fixture SQL at a small scale, with
merged pull requests, tags, incidents naming tags, failed syncs and multi-repository deployments)
with DuckDB allowed two threads, so that the lanes run (the suite runs with
GITOPS_DORA_DUCKDB_THREADS=1, under which a report runs serially), and compares the JSON with that
of ``compute_metrics(..., lanes=False)`` on the same connection: every query shape of
tests/metrics_queries.py, and a family body reading ``{since}`` (two passes for
``--compare-previous``). It also checks when the lanes must not run (a caller's TEMP stand-in for a
store table, a caller's own TEMP view, a caller's transaction, one thread), and that a failing
family on either lane reports its own error with nothing left behind.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from analytics.json_output import dumps_bytes
from analytics.metrics import engine, lanes
from analytics.metrics.engine import MetricsQuery, compute_metrics
from analytics.metrics.transactions import in_transaction
from analytics.metrics.views import view_definition
from analytics.store.connection import open_writer
from bench.metrics_scale import fixture_sql
from tests.metrics_queries import CONFIG, QUERIES, reader
from tests.test_metrics_speed_transactions import EXTRA_SQL

ONE_PASS_QUERIES = list(QUERIES)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lanes") / "store.duckdb"
    with open_writer(path, source="test-fixture") as session:
        session.con.execute(fixture_sql(services=10, commits=5_000, deployments=500, incidents=120))
        session.con.execute(EXTRA_SQL)
    return path


@pytest.fixture
def con(store: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    for connection in reader(store):
        connection.execute("SET threads = 2")
        yield connection


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """One entry per report that went to lanes.run: True when the lanes computed it."""
    seen: list[bool] = []
    real = lanes.run

    def counted(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        seen.append(result is not None)
        return result

    monkeypatch.setattr(lanes, "run", counted)
    return seen


def _json(con: duckdb.DuckDBPyConnection, query: MetricsQuery, *, laned: bool = True) -> bytes:
    return dumps_bytes(compute_metrics(con, query, CONFIG, lanes=laned).payload())


def _state(con: duckdb.DuckDBPyConnection) -> tuple[Any, ...]:
    """What a report must put back: TEMP tables (but the two every report leaves), TEMP views and
    their SQL, attached databases, the search path, threads, disabled optimizers, transaction."""
    tables = {r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = 'temp'").fetchall()}
    views = sorted(con.execute("SELECT view_name, sql FROM duckdb_views() WHERE database_name = 'temp'"
                               " AND NOT internal").fetchall())
    databases = sorted(
        r[0] for r in con.execute("SELECT database_name FROM duckdb_databases()").fetchall())
    settings = con.execute("SELECT current_setting('search_path'), current_setting('threads'),"
                           " current_setting('disabled_optimizers')").fetchone()
    tables -= {"metric_periods", engine.SERVICE_TEAMS}
    return tables, views, databases, settings, in_transaction(con)


def test_the_families_split_by_what_they_read() -> None:
    """Throughput and the PR breakdown read window_changes (lane A, which builds it); the others do
    not (deployment frequency's views name it in comments only): lane B."""
    files = engine.group_files()
    lane_a, lane_b = lanes.split_families(files)
    assert [files[i].name for i in lane_a] == ["10_throughput", "40_pr_breakdown"]
    assert [files[i].name for i in lane_b] == ["30_stability", "31_incidents", "32_deployment_frequency"]


@pytest.mark.parametrize("name", ONE_PASS_QUERIES)
def test_lanes_give_the_serial_engines_bytes(
    con: duckdb.DuckDBPyConnection, runs: list[bool], name: str,
) -> None:
    query = QUERIES[name]
    before = _state(con)
    laned = _json(con, query)
    assert runs == [True]
    assert _state(con) == before
    assert laned == _json(con, query, laned=False)
    groups = json.loads(laned)["groups"]
    assert any(g["deployments"] for g in groups)
    assert any(g["incidents"] for g in groups)  # lane B's families are in the merge
    assert any(g["changes"] for g in groups)  # and lane A's


def test_two_passes_for_a_body_that_reads_the_window(
    con: duckdb.DuckDBPyConnection, runs: list[bool], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A family reading ``{since}`` makes --compare-previous run each window on its own: lane B
    hands over each pass's tables; the bytes are the serial engine's."""
    files = engine.group_files()
    reading = [engine.GroupFile(**{**vars(gf), "body": gf.body.rstrip().removesuffix(";")
                                   + "\n-- {since}\n"}) if gf.name == "30_stability" else gf
               for gf in files]
    assert any("{since}" in gf.body for gf in reading)
    monkeypatch.setattr(engine, "group_files", lambda: reading)
    query = QUERIES["service filter, previous"]
    laned = _json(con, query)
    assert runs == [True]
    assert laned == _json(con, query, laned=False)
    assert any(g["previous"]["incidents"] for g in json.loads(laned)["groups"])


def test_a_callers_temp_table_runs_the_report_serially(
    con: duckdb.DuckDBPyConnection, runs: list[bool],
) -> None:
    """A TEMP stand-in for a store table is seen by the caller's connection only: no lanes."""
    serial = _json(con, QUERIES["whole window"], laned=False)
    database = con.execute("SELECT current_database()").fetchone()[0]  # type: ignore[index]
    con.execute(f"CREATE TEMP TABLE incidents AS SELECT * FROM {database}.main.incidents WHERE false")
    assert _json(con, QUERIES["whole window"]) == _json(con, QUERIES["whole window"], laned=False) != serial
    assert runs == []


def test_a_callers_temp_view_runs_the_report_serially(
    con: duckdb.DuckDBPyConnection, runs: list[bool],
) -> None:
    """A TEMP view named like a store table (the dashboard's ``services`` without teams), or a
    metric view replaced: lane B would not see it, so the report runs on one connection."""
    query = QUERIES["by team, month"]
    database = con.execute("SELECT current_database()").fetchone()[0]  # type: ignore[index]
    con.execute("CREATE TEMP VIEW services AS SELECT * REPLACE (CAST(NULL AS VARCHAR) AS team)"
                f" FROM {database}.main.services")
    pooled = _json(con, query)
    assert runs == []  # a TEMP object named like a store table: not even tried
    assert pooled == _json(con, query, laned=False)
    con.execute("DROP VIEW services")
    plain = _json(con, query)
    assert runs == [True]
    assert pooled != plain
    head = "CREATE OR REPLACE TEMP VIEW incident_attribution AS"
    text = view_definition("incident_attribution")
    emptied = text.replace(head, f"{head} SELECT * FROM (", 1).rstrip().removesuffix(";") + "\n) WHERE false"
    con.execute(emptied)
    serial = _json(con, query, laned=False)
    con.execute(emptied)  # the serial engine puts the shared views' definitions back from the files
    assert _json(con, query) == serial != plain
    assert runs == [True, False]  # lane B, set up from the view files, declined


def test_inside_a_callers_transaction_and_on_one_thread_no_lanes(
    con: duckdb.DuckDBPyConnection, runs: list[bool],
) -> None:
    query = QUERIES["trend week"]
    laned = _json(con, query)
    con.execute("BEGIN TRANSACTION")
    assert _json(con, query) == laned
    assert in_transaction(con)
    con.execute("COMMIT")
    con.execute("SET threads = 1")
    assert _json(con, query) == laned
    assert runs == [True]


@pytest.mark.parametrize(("fact", "lane"), [("incident_attribution", "B"), ("deployment_times", "A")])
def test_a_failing_family_on_either_lane_reports_its_own_error(
    con: duckdb.DuckDBPyConnection, runs: list[bool], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
    fact: str, lane: str,
) -> None:
    """Lane B's error is raised by lane A; either way the connection is left as it was found."""
    broken = tmp_path / "99_broken.sql"
    changes = "" if lane == "B" else " CROSS JOIN (SELECT count(*) AS c FROM window_changes) w"  # lane A's
    broken.write_text(f"-- fact: {fact}\n-- time: {'created_at' if lane == 'B' else 'deployed_at'}\n"
                      "SELECT {group_keys}, count(*) AS n, max(error('family failed on purpose')) AS boom\n"
                      f"FROM scoped{changes} GROUP BY {{group_keys}};\n")
    files = engine.group_files()
    with_broken = [*files, engine.parse_group_file(broken)]
    assert (len(files) in lanes.split_families(with_broken)[1]) == (lane == "B")
    monkeypatch.setattr(engine, "group_files", lambda: with_broken)
    before = _state(con)
    with pytest.raises(duckdb.Error, match="family failed on purpose"):
        _json(con, QUERIES["trend week"])
    assert _state(con) == before
    monkeypatch.setattr(engine, "group_files", lambda: files)
    assert _json(con, QUERIES["whole window"]) == _json(con, QUERIES["whole window"], laned=False)
    assert runs == [True]
