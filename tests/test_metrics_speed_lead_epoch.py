"""Two speed changes that must change no number.

change_lead_times computes each deployment's instant in epoch seconds once per deployment (not
once per change): the lead time of every change must stay the same DOUBLE, bit for bit, as the
per-change ICU expression ``(epoch(deployed_at) - epoch(start_at)) / 3600.0`` it reproduces.

The existing instants test's store has deployment times with only a sub-millisecond part, where
even the naive ``epoch_us(ts) / 1e6`` happens to equal ICU's epoch; here deployment and commit
times carry milliseconds and microseconds, so the sample also holds many instants where a wrong
epoch (e.g. ``/ 1e6``, or the epoch of another column) would move the lead time, and the test
checks that it does (the sample can catch the mistake it guards against).

The engine copies the small store tables on one DuckDB thread and puts the connection's thread
setting back afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from analytics.metrics.window import parse_instant
from analytics.store.connection import open_reader, open_writer
from bench.metrics_scale import fixture_sql


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lead_epoch") / "store.duckdb"
    with open_writer(path, source="test-fixture") as session:
        session.con.execute(fixture_sql(services=10, commits=3_000, deployments=300, incidents=50))
        # milliseconds and microseconds on both sides of every lead time
        session.con.execute(
            "UPDATE deployments"
            " SET deployed_at = deployed_at + to_microseconds(CAST(hash(id) % 999983 AS BIGINT))"
        )
        session.con.execute(
            "UPDATE commits"
            " SET author_time = author_time + to_microseconds(CAST(hash(sha) % 999979 AS BIGINT)),"
            " committer_time = committer_time"
            "   + to_microseconds(CAST(hash(sha || 'c') % 999961 AS BIGINT))"
        )
        # the changes carry their commits' times (migration 1601): kept in step as attribution does
        session.con.execute(
            "UPDATE deployment_changes dc SET author_time = c.author_time, committer_time = c.committer_time"
            " FROM commits c WHERE c.repo = dc.repo AND c.sha = dc.sha"
        )
    return path


@pytest.mark.parametrize("start", ["author", "committer"])
def test_lead_hours_equal_the_per_change_icu_expression(store: Path, start: str) -> None:
    con = open_reader(store)
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"SET VARIABLE gitops_dora_lead_time_start = '{start}'")
        row = con.execute(
            "SELECT count(*), count(lead_hours),"
            " count(*) FILTER (WHERE lead_hours IS DISTINCT FROM"
            "                  (epoch(deployed_at) - epoch(start_at)) / 3600.0),"
            # how many lead times a naive epoch of the deployment time would have moved
            " count(*) FILTER (WHERE (epoch(deployed_at) - epoch(start_at)) / 3600.0 IS DISTINCT FROM"
            "                  (epoch_us(deployed_at) / 1e6 - epoch(start_at)) / 3600.0),"
            " count(*) FILTER (WHERE start_source = ?)"
            " FROM change_lead_times",
            [start],
        ).fetchone()
        assert row is not None
        changes, measured, differing, naive_would_differ, from_start = row
        assert changes > 2_000 and measured == changes and from_start == changes
        assert naive_would_differ > changes // 10  # the sample can tell a wrong epoch apart
        assert differing == 0
    finally:
        con.close()



@contextmanager
def _connection_threads(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Stands in for engine._one_thread: the copies run on the connection's own threads."""
    yield


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_report_puts_the_thread_setting_back(
    store: Path, threads: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store copies run on one DuckDB thread (engine._one_thread): the connection's own
    setting is back afterwards, whatever it was, and the report is the one the copies give on
    the connection's threads."""
    from analytics.metrics import engine

    query = engine.MetricsQuery(since=parse_instant("2023-01-02", "--since"),
                                until=parse_instant("2023-06-01", "--until"), trend="month")
    con = open_reader(store)
    try:
        con.execute(f"SET threads = {threads}")
        report = engine.compute_metrics(con, query)
        row = con.execute("SELECT current_setting('threads')").fetchone()
        assert row is not None and int(row[0]) == threads
    finally:
        con.close()
    monkeypatch.setattr(engine, "_one_thread", _connection_threads)
    con = open_reader(store)
    try:
        con.execute(f"SET threads = {threads}")
        reference = engine.compute_metrics(con, query)
    finally:
        con.close()
    assert len(report.groups) > 10 and report.payload() == reference.payload()
