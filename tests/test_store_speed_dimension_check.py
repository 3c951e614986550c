"""The check for doubled service, environment and repository keys after a unit commits reads only
the dimension tables some snapshot since the unit began added rows to (the SQLite catalog's
change log says which), so a unit that registered nothing skips it; a unit that did add a row
still cleans a doubled key."""

from __future__ import annotations

from pathlib import Path

from analytics.store.connection import (
    _dimensions_added_since,
    _newest_snapshot,
    hold_store,
    open_writer,
)
from analytics.store.location import resolve
from analytics.store.upsert import merge_values
from tests.store_query import query


def _double_a_service(db: Path, name: str) -> None:
    """Two rows with one key, as two overlapping writers leave them (committed without the
    check: a raw connection's transaction is not a unit)."""
    with hold_store(db) as con:
        con.execute("BEGIN TRANSACTION")
        con.execute(f"INSERT INTO services VALUES ('{name}', NULL), ('{name}', 'team-a')")
        con.execute("COMMIT")


def test_change_log_names_the_dimension_tables_written(tmp_path: Path) -> None:
    db = tmp_path / "store.ducklake"
    loc = resolve(db)
    with open_writer(db, source="setup") as session:
        session.set_state("x", "k", "v")
    start = _newest_snapshot(loc)
    assert isinstance(start, int)
    with open_writer(db, source="state only") as session:
        session.set_state("x", "k", "w")
    assert _dimensions_added_since(loc, start) == []
    after_state = _newest_snapshot(loc)
    with open_writer(db, source="env") as session:
        merge_values(session.con, "environments", {"name": "prod", "is_production": True})
    assert _dimensions_added_since(loc, after_state) == ["environments"]
    with open_writer(db, source="many") as session:  # more rows than DuckLake inlines: a data file
        session.con.execute("INSERT INTO repositories (id, url) SELECT 'r' || i, 'u' FROM range(50) t(i)")
        merge_values(session.con, "services", {"name": "checkout", "team": None})
    assert _dimensions_added_since(loc, after_state) == ["services", "environments", "repositories"]
    assert _dimensions_added_since(loc, None) == ["services", "environments", "repositories"]


def test_unit_that_adds_a_service_cleans_a_doubled_key_and_one_that_adds_nothing_reads_nothing(
    tmp_path: Path,
) -> None:
    db = tmp_path / "store.ducklake"
    with open_writer(db, source="setup") as session:
        session.set_state("x", "k", "v")
    _double_a_service(db, "payments")
    with open_writer(db, source="state only") as session:
        session.set_state("x", "k", "w")
    # nothing registered: the check was skipped, so the doubled key is still there
    assert query(db, "SELECT count(*) FROM lake.main.services WHERE name = 'payments'") == [(2,)]
    with open_writer(db, source="register") as session:
        merge_values(session.con, "services", {"name": "billing", "team": None}, on_match="ignore")
    assert query(db, "SELECT name, team FROM lake.main.services ORDER BY name") == [
        ("billing", None), ("payments", "team-a")]

