"""A MERGE of a few rows is planned without DuckLake's statistics (``few_rows``): the same rows
as the plain MERGE, and the planner is back to normal afterwards, also when the MERGE failed and
its unit was rolled back (the next unit on the connection plans its big joins as usual)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from analytics.errors import UserError
from analytics.store.connection import _open_migrated, _unit
from analytics.store.location import resolve
from analytics.store.upsert import merge, merge_rows, merge_values
from tests.store_query import query


def _planner(con: duckdb.DuckDBPyConnection) -> str:
    return str(con.execute("SELECT current_setting('disabled_optimizers')").fetchall()[0][0])


def test_few_rows_merge_stores_what_the_plain_merge_stores(tmp_path: Path) -> None:
    lean, plain = tmp_path / "lean.ducklake", tmp_path / "plain.ducklake"
    for db, few in ((lean, True), (plain, False)):
        con = _open_migrated(resolve(db))
        try:
            con.execute("BEGIN TRANSACTION")
            merge(con, "services",
                  "SELECT * FROM (VALUES ('a', 't1'), ('b', NULL), ('c', 't3')) v(name, team)",
                  ["name", "team"], few_rows=few)
            merge(con, "services", "SELECT 'b' AS name, 'late' AS team", ["name", "team"],
                  on_match="ignore", few_rows=few)
            merge(con, "services", "SELECT 'c' AS name, 'new' AS team", ["name", "team"], few_rows=few)
            merge_rows(con, "environments", ["name", "is_production"], [["prod", True], ["dev", False]])
            merge_values(con, "environments", {"name": "dev", "is_production": True})
            con.execute("COMMIT")
            assert _planner(con) == ""
        finally:
            con.close()
    for sql in ("SELECT * FROM services ORDER BY ALL", "SELECT * FROM environments ORDER BY ALL"):
        assert query(lean, sql) == query(plain, sql)
    assert query(lean, "SELECT * FROM services ORDER BY ALL") == [("a", "t1"), ("b", None), ("c", "new")]
    assert query(lean, "SELECT * FROM environments ORDER BY ALL") == [("dev", True), ("prod", True)]


def test_a_failed_few_rows_merge_leaves_the_planner_as_it_was(tmp_path: Path) -> None:
    loc = resolve(tmp_path / "store.ducklake")
    con = _open_migrated(loc)
    try:
        with pytest.raises(UserError), _unit(con, loc, "test", "", datetime.now(UTC),
                                             record_conflict=True) as session:
            merge_values(session.con, "services", {"name": "ok", "team": None})
            # a value the column cannot hold aborts the transaction inside the lean MERGE, which
            # then cannot reset the planner itself
            merge(session.con, "environments", "SELECT 'x' AS name, 'not a boolean' AS is_production",
                  ["name", "is_production"], few_rows=True)
        assert _planner(con) == ""
    finally:
        con.close()
    assert query(loc, "SELECT count(*) FROM services") == [(0,)]
