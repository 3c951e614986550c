"""A writer skips the migration check when the SQLite catalog already holds every table the
migrations create (read with sqlite3; two DuckLake statements saved on every open), and still
applies a migration that is new to the store."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
from pathlib import Path

import pytest

from analytics.store import connection, migrations, open_writer
from analytics.store.location import resolve
from analytics.store.migrations import available, created_tables
from tests.store_query import store_reader


def store_then_migration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, sql: str) -> Path:
    """A store made by the shipped migrations, then one more migration file that it has not seen."""
    db = tmp_path / "s.ducklake"
    with open_writer(db, source="test"):
        pass
    newer = tmp_path / "migrations"
    shutil.copytree(migrations.MIGRATIONS_DIR, newer)
    (newer / name).write_text(sql)
    monkeypatch.setattr(migrations, "MIGRATIONS_DIR", newer)
    return db


def test_every_shipped_migration_creates_a_table() -> None:
    """Otherwise created_tables() is None and every writer open pays the slow check."""
    tables = created_tables()
    assert tables is not None
    assert {"deployments", "commits", "schema_migrations"} <= tables
    assert len(available()) >= 5


def test_a_fresh_store_is_current_and_an_empty_path_is_not(tmp_path: Path) -> None:
    db = tmp_path / "s.ducklake"
    assert not connection._schema_is_current(resolve(db))
    with open_writer(db, source="test"):
        pass
    assert connection._schema_is_current(resolve(db))
    other = tmp_path / "other.ducklake"  # a SQLite file, but no DuckLake catalog in it
    with contextlib.closing(sqlite3.connect(other)) as lite:
        lite.execute("CREATE TABLE unrelated (x INTEGER)")
        lite.commit()
    assert not connection._schema_is_current(resolve(other))


def test_a_migration_added_after_the_store_was_made_is_applied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = store_then_migration(tmp_path, monkeypatch, "9999_later_table.sql",
                              "CREATE TABLE later_table (id VARCHAR NOT NULL, note VARCHAR);\n")
    assert not connection._schema_is_current(resolve(db))
    with open_writer(db, source="test") as session:
        session.con.execute("INSERT INTO later_table VALUES ('a', 'b')")
    assert connection._schema_is_current(resolve(db))
    with store_reader(db) as con:
        assert con.execute("SELECT max(version) FROM schema_migrations").fetchone() == (9999,)
        assert con.execute("SELECT id, note FROM later_table").fetchall() == [("a", "b")]


def test_a_migration_that_creates_no_table_turns_the_shortcut_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = store_then_migration(tmp_path, monkeypatch, "9998_rows_only.sql",
                              "INSERT INTO environments VALUES ('qa', false);\n")
    assert created_tables() is None
    assert not connection._schema_is_current(resolve(db))
    with open_writer(db, source="test"):
        pass
    with store_reader(db) as con:
        assert con.execute("SELECT count(*) FROM environments WHERE name = 'qa'").fetchone() == (1,)
