"""The metric SQL's ICU-free instants (``sql/views/00_instants.sql``) give what ICU gives.

``epoch()`` and ``timezone('UTC', ...)`` on a TIMESTAMPTZ go through ICU's calendar for every
value; the views use the macros ``epoch_seconds`` and ``utc_day`` instead (integer arithmetic on
the epoch microseconds). A lead time or a deployment day must not move by one bit for it, so the
macros are compared with the ICU functions on instants with and without sub-millisecond parts,
before 1970 and after, in several session time zones, and the views' lead times and deployment
days on a real store with sub-millisecond times against the ICU expressions they replaced.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from analytics.metrics.views import VIEWS_DIR
from analytics.store.connection import open_reader, open_writer
from bench.metrics_scale import fixture_sql

# every instant from 1825 to 2215 at a pseudo-random microsecond, plus NULL
INSTANTS_SQL = """
CREATE TABLE instants AS
SELECT make_timestamptz(CAST(hash(i) % 12000000000000000 AS BIGINT) - 4500000000000000) AS ts
FROM range(200000) t(i)
UNION ALL SELECT NULL
"""


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Kolkata"])
def test_macros_equal_icu_bit_for_bit(zone: str) -> None:
    con = duckdb.connect()
    con.execute(f"SET TimeZone = '{zone}'")
    con.execute((VIEWS_DIR / "00_instants.sql").read_text())
    con.execute(INSTANTS_SQL)
    row = con.execute(
        "SELECT count(*) FILTER (WHERE epoch_us(ts) % 1000 <> 0),"
        " count(*) FILTER (WHERE ts < TIMESTAMPTZ '1970-01-01 00:00:00+00'),"
        " count(*) FILTER (WHERE epoch_seconds(ts) IS DISTINCT FROM epoch(ts)),"
        " count(*) FILTER (WHERE utc_day(ts) IS DISTINCT FROM CAST(timezone('UTC', ts) AS DATE)),"
        " typeof(any_value(epoch_seconds(ts))), typeof(any_value(utc_day(ts)))"
        " FROM instants"
    ).fetchone()
    assert row is not None
    sub_millisecond, before_1970, epoch_differs, day_differs, epoch_type, day_type = row
    assert sub_millisecond > 150_000 and before_1970 > 50_000  # the sample covers both cases
    assert (epoch_differs, day_differs) == (0, 0)
    assert (epoch_type, day_type) == ("DOUBLE", "DATE")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("instants") / "store.duckdb"
    with open_writer(path, source="test-fixture") as session:
        session.con.execute(fixture_sql(services=10, commits=2_000, deployments=200, incidents=50))
        # sub-millisecond times, as a webhook or a Kubernetes MicroTime can give
        session.con.execute(
            "UPDATE commits"
            " SET author_time = author_time + to_microseconds(CAST(hash(sha) % 1000000 AS BIGINT)),"
            " committer_time = committer_time"
            "   + to_microseconds(CAST(hash(sha || 'c') % 1000000 AS BIGINT))"
        )
        # the changes carry their commits' times (migration 1601): kept in step as attribution does
        session.con.execute(
            "UPDATE deployment_changes dc SET author_time = c.author_time, committer_time = c.committer_time"
            " FROM commits c WHERE c.repo = dc.repo AND c.sha = dc.sha"
        )
        session.con.execute(
            "UPDATE deployments"
            " SET deployed_at = deployed_at + to_microseconds(CAST(hash(id) % 997 AS BIGINT))"
        )
    return path


def test_views_lead_hours_and_days_equal_the_icu_expressions(store: Path) -> None:
    con = open_reader(store)
    try:
        con.execute("SET TimeZone = 'UTC'")
        row = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE epoch_us(start_at) % 1000 <> 0),"
            " count(*) FILTER (WHERE lead_hours IS DISTINCT FROM"
            "                  (epoch(deployed_at) - epoch(start_at)) / 3600.0)"
            " FROM change_lead_times"
        ).fetchone()
        assert row is not None and row[0] > 1_000 and row[1] > 900
        assert row[2] == 0
        days = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE deployed_day IS DISTINCT FROM"
            "                  CAST(timezone('UTC', deployed_at) AS DATE))"
            " FROM deployment_baselines"
        ).fetchone()
        assert days is not None and days[0] == 200 and days[1] == 0
        recovery = con.execute(
            "SELECT count(recovery_hours), count(*) FILTER (WHERE recovery_hours IS DISTINCT FROM"
            " CASE WHEN recovered_at >= deployed_at"
            "      THEN (epoch(recovered_at) - epoch(deployed_at)) / 3600.0 END)"
            " FROM deployment_outcomes"
        ).fetchone()
        assert recovery is not None and recovery[0] > 0 and recovery[1] == 0
    finally:
        con.close()
