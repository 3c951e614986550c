"""A key of services, environments or repositories held twice in a snapshot changes no figure.

Two overlapping writers on a PostgreSQL catalog can both commit the same new service (see
tests/test_store_dimension_races.py); the second writer's clean-up, or for the webhook receiver
the next CLI unit's, removes the extra row, but a reader in between used to join it twice: a
`metrics` read during tests/test_store_acceptance.py counted `payments` with 80 deployments
instead of 40. Here every row of the three tables is stored three times over a copy of the demo
store, as such writers would leave them (the same row again, and one without the value a writer
may leave unset), and every reader of them must show what the demo store shows.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from analytics.store.connection import connect, hold_store, open_reader, open_writer
from analytics.store.upsert import merge_values
from tests.stability_env import run_cli_inprocess as run_cli
from tests.store_fixture import DemoStore, copy_store
from tests.store_query import query

SINCE, UNTIL = "2026-05-01", "2026-11-01"
# Each row again as it is, and once more without its team / with the production flag off /
# without the local path and with another web address: the copies readers must not show.
DOUBLE_EVERY_ROW = (
    "INSERT INTO services SELECT * FROM services UNION ALL SELECT name, NULL FROM services",
    "INSERT INTO environments SELECT * FROM environments "
    "UNION ALL SELECT name, FALSE FROM environments",
    "INSERT INTO repositories SELECT * FROM repositories UNION ALL "
    "SELECT * REPLACE (NULL AS local_path, 'https://doubled.invalid/' || id AS web_url) FROM repositories",
)


def _doubled_copy(demo: DemoStore, dest: Path) -> Path:
    db = copy_store(demo.db, dest)
    with hold_store(db) as con:  # a raw transaction, not a unit: nothing cleans the rows up
        con.execute("BEGIN TRANSACTION")
        for sql in DOUBLE_EVERY_ROW:
            con.execute(sql)
        con.execute("COMMIT")
    return db


@pytest.fixture(scope="module")
def doubled(tmp_path_factory: pytest.TempPathFactory, demo_store: DemoStore) -> Path:
    return _doubled_copy(demo_store, tmp_path_factory.mktemp("doubled") / "store.ducklake")


def test_the_copy_really_holds_every_key_three_times(demo_store: DemoStore, doubled: Path) -> None:
    for table, key in (("services", "name"), ("environments", "name"), ("repositories", "id")):
        stored = query(doubled, f"SELECT {key}, count(*) FROM lake.main.{table} GROUP BY ALL ORDER BY 1")
        assert stored and {n for _, n in stored} == {3}, (table, stored)
        assert _shown(doubled, table) == _shown(demo_store.db, table), table
        assert len(query(doubled, f"SELECT * FROM {table}")) == 3 * len(_shown(doubled, table))


def _shown(db: Path, table: str) -> list[tuple[Any, ...]]:
    """A table's rows as every product reader shows them: through the one-row view."""
    con = open_reader(db, install_views=False)
    try:
        return con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("args", [
    ("metrics", "--group-by", "team,service,environment", "--format", "json"),
    ("metrics", "--group-by", "team", "--team", "payments", "--trend", "month", "--format", "json"),
    ("deployments", "--format", "json"),
    ("deployments", "--team", "web"),
    ("incidents", "--format", "csv"),
    ("incidents", "--team", "payments"),
], ids=" ".join)
def test_cli_reads_are_those_of_the_store_without_the_doubles(
    demo_store: DemoStore, doubled: Path, args: tuple[str, ...],
) -> None:
    window = ("--since", SINCE, "--until", UNTIL) if args[0] == "metrics" else ()
    expected = run_cli(demo_store.db, *args, *window).stdout
    assert len(expected.splitlines()) > 3  # the demo store has rows for every one of these
    assert run_cli(doubled, *args, *window).stdout == expected


def _dashboard_reads(db: Path) -> dict[str, Any]:
    from dashboards import drilldown, queries
    from dashboards.filters import Filters
    from dashboards.metrics_source import MetricsRequest, compute

    window = Filters(since=date.fromisoformat(SINCE), until=date.fromisoformat(UNTIL))
    listed = queries.deployment_list(db, window)
    assert listed is not None
    deployment = str(listed["id"].iloc[0])
    return {
        "dimensions": queries.dimensions(db),
        "deployment_list": listed.to_dict("records"),
        "changes": drilldown.changes(db, deployment).to_dict("records"),
        "by_team": compute(db, MetricsRequest(since=SINCE, until=UNTIL, group_by=("team",))),
        "pooled_team": compute(db, MetricsRequest(since=SINCE, until=UNTIL, group_by=("team",),
                                                  team="payments", pooled=True)),
    }


def test_dashboard_reads_are_those_of_the_store_without_the_doubles(
    demo_store: DemoStore, doubled: Path,
) -> None:
    expected = _dashboard_reads(demo_store.db)
    assert expected["changes"] and len(expected["by_team"]["groups"]) == 3
    got = _dashboard_reads(doubled)
    assert json.dumps(got, default=str, sort_keys=True) == json.dumps(expected, default=str, sort_keys=True)


def test_the_clean_up_keeps_the_row_readers_showed(demo_store: DemoStore, tmp_path: Path) -> None:
    """The unit that commits next removes the extra rows; what stays is what readers showed."""
    db = _doubled_copy(demo_store, tmp_path / "store.ducklake")
    with hold_store(db) as con:  # two non-null teams for one service: the rule, not the order, decides
        con.execute("INSERT INTO services VALUES ('payments-api', 'aaa-first-by-name')")
    shown = {t: _shown(db, t) for t in ("services", "environments", "repositories")}
    assert ("payments-api", "aaa-first-by-name") in shown["services"]
    with open_writer(db, source="registers one more of each") as session:
        merge_values(session.con, "services", {"name": "new", "team": None})
        merge_values(session.con, "environments", {"name": "new", "is_production": False})
        merge_values(session.con, "repositories", {"id": "new", "url": "u"})
    for table, rows in shown.items():
        stored = query(db, f"SELECT * FROM lake.main.{table} WHERE {_key(table)} <> 'new' ORDER BY ALL")
        assert stored == rows, table


def _key(table: str) -> str:
    return "id" if table == "repositories" else "name"


def test_a_report_copies_the_one_row_views_and_puts_them_back(
    doubled: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The engine reads services and environments from TEMP copies (a DuckLake table read costs a
    catalog look-up each time): on a reader their names are the one-row views, which it renames
    for the report, copies, and puts back afterwards."""
    from analytics.metrics import engine
    from tests.metrics_queries import payload

    made: dict[str, bool] = {}
    real = engine.copy_table

    def copy_table(con: Any, database: str, name: str) -> bool:
        made[name] = real(con, database, name)
        return made[name]

    monkeypatch.setattr(engine, "copy_table", copy_table)
    con = open_reader(doubled)
    try:
        views = "SELECT view_name, sql FROM duckdb_views() WHERE database_name = 'temp' ORDER BY 1"
        before = con.execute(views).fetchall()
        assert {"services", "environments", "repositories"} <= {str(r[0]) for r in before}
        payload(con, engine.MetricsQuery(since=datetime.fromisoformat(f"{SINCE}T00:00:00+00:00"),
                                         until=datetime.fromisoformat(f"{UNTIL}T00:00:00+00:00"),
                                         group_by=("team",)))
        assert made["services"] and made["environments"]
        assert con.execute(views).fetchall() == before
        assert con.execute("SELECT count(*) FROM services").fetchone() == (3,)
    finally:
        con.close()


def test_the_engine_knows_which_tables_readers_see_through_a_view() -> None:
    """The metrics package does not import the store: it names the viewed tables itself."""
    from analytics.metrics.engine import VIEWED_DIMENSIONS
    from analytics.store.dimensions import SHARED_DIMENSIONS

    assert VIEWED_DIMENSIONS == SHARED_DIMENSIONS


def test_a_reader_without_the_metric_views_opens_a_catalog_that_has_no_tables_yet(tmp_path: Path) -> None:
    """A first migration cut short leaves a catalog without tables: a reader that asks for no
    metric views (the code-host collectors' state reads, a trial `assess`) still opens, as before
    the one-row views, and finds no table; one that asks for them is told to collect first."""
    import duckdb

    from analytics.errors import UserError

    db = tmp_path / "store.ducklake"
    connect(db).close()  # the attach creates the catalog; nothing migrates it
    con = open_reader(db, install_views=False)
    try:
        with pytest.raises(duckdb.CatalogException):
            con.execute("SELECT * FROM services").fetchall()
    finally:
        con.close()
    with pytest.raises(UserError, match="has no data yet"):
        open_reader(db)


def test_the_data_health_page_counts_the_rows_as_stored(demo_store: DemoStore, doubled: Path) -> None:
    """Every other page shows a doubled key once; the row counts are where such a store shows."""
    from dashboards import health

    counts = dict(health.row_counts(doubled)[["table_name", "row_count"]].itertuples(index=False))
    demo = dict(health.row_counts(demo_store.db)[["table_name", "row_count"]].itertuples(index=False))
    for table in ("services", "environments", "repositories"):
        assert counts[table] == 3 * demo[table] == len(query(doubled, f"SELECT * FROM {table}")), table
    assert counts["deployments"] == demo["deployments"] > 0


def test_every_column_of_a_shared_dimension_decides_which_row_is_kept(demo_store: DemoStore) -> None:
    """The kept row must not depend on scan order: a column added to one of these tables must be
    added to its ``KEEP_FIRST`` order too, or two rows differing only in it would be shown by
    chance."""
    import re

    from analytics.store.dimensions import KEEP_FIRST
    from analytics.store.keys import key_of

    for table, order in KEEP_FIRST.items():
        columns = {str(r[0]) for r in query(demo_store.db, f"DESCRIBE lake.main.{table}")}
        named = set(re.findall(r"[a-z_]+", order)) - {"is", "null", "desc", "nulls", "last"}
        assert named <= columns, (table, named - columns)
        assert columns - set(key_of(table)) <= named, (table, columns - set(key_of(table)) - named)
