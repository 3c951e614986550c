"""The store contract: versioned migrations, one-transaction writes, readers pinned to a snapshot."""

from __future__ import annotations

from pathlib import Path

import pytest

from analytics.errors import UserError
from analytics.store import latest_snapshot, open_reader, open_writer
from analytics.store.migrations import available, current_version
from tests.store_query import store_reader


def test_migrations_apply_once_and_are_versioned(tmp_path: Path) -> None:
    db = tmp_path / "s.ducklake"
    with open_writer(db, source="test") as session:
        session.upsert("services", [{"name": "a", "team": "t1"}])
    with open_writer(db, source="test") as session:  # second open must not re-run migrations
        session.upsert("services", [{"name": "a", "team": "t2"}])
    con = store_reader(db)
    versions = [r[0] for r in con.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()]
    assert versions == [m.version for m in available()]
    assert current_version(con) == max(versions)
    # upsert by primary key replaced the row instead of duplicating it
    assert con.execute("SELECT name, team FROM lake.main.services").fetchall() == [("a", "t2")]
    con.close()


def test_failed_run_rolls_back_everything_and_is_recorded(tmp_path: Path) -> None:
    db = tmp_path / "s.ducklake"
    with open_writer(db, source="test") as session:
        session.upsert("services", [{"name": "kept", "team": None}])
    with pytest.raises(RuntimeError), open_writer(db, source="broken", target="x") as session:
        session.upsert("services", [{"name": "half-written", "team": None}])
        session.set_state("broken", "cursor", "42")
        raise RuntimeError("source failed midway")
    con = store_reader(db)
    assert con.execute("SELECT name FROM services").fetchall() == [("kept",)]
    assert con.execute("SELECT count(*) FROM collector_state").fetchone() == (0,)
    runs = con.execute("SELECT source, status, message FROM collection_runs ORDER BY started_at").fetchall()
    assert runs == [("test", "ok", ""), ("broken", "failed", "source failed midway")]
    con.close()


def test_readers_see_committed_snapshots_not_the_open_transaction(tmp_path: Path) -> None:
    db = tmp_path / "s.ducklake"
    with open_writer(db, source="test") as session:
        session.upsert("services", [{"name": "v1", "team": None}])
    first = latest_snapshot(db)
    assert first is not None
    pinned = open_reader(db, install_views=False)
    with open_writer(db, source="test") as session:
        session.upsert("services", [{"name": "v2", "team": None}])
        # While the writer's transaction is open, a new reader sees only v1, and does not wait.
        reader = open_reader(db, install_views=False)
        assert reader.execute("SELECT name FROM services ORDER BY 1").fetchall() == [("v1",)]
        reader.close()
    reader = open_reader(db, install_views=False)
    assert reader.execute("SELECT name FROM services ORDER BY 1").fetchall() == [("v1",), ("v2",)]
    reader.close()
    # A reader opened before the commit stays on its snapshot: a page never changes under it.
    assert pinned.execute("SELECT name FROM services ORDER BY 1").fetchall() == [("v1",)]
    pinned.close()
    # Time travel: the first snapshot is still there to read.
    old = open_reader(db, install_views=False, as_of=first.id)
    assert old.execute("SELECT name FROM services ORDER BY 1").fetchall() == [("v1",)]
    old.close()


def test_reader_on_missing_database_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no database at .*gitops-dora demo"):
        open_reader(tmp_path / "absent.ducklake")


def test_watermarks_and_warnings_round_trip(tmp_path: Path) -> None:
    db = tmp_path / "s.ducklake"
    with open_writer(db, source="git:r", target="r") as session:
        assert session.get_state("git:r", "tips") is None
        session.set_state("git:r", "tips", "abc")
        session.warn("shallow_clone", "lead times truncated")
        session.warn("shallow_clone", "lead times truncated")  # idempotent by key
    with open_writer(db, source="git:r", target="r") as session:
        assert session.get_state("git:r", "tips") == "abc"
    con = store_reader(db)
    assert con.execute("SELECT kind, detail, count FROM data_warnings").fetchall() == [
        ("shallow_clone", "lead times truncated", 1)
    ]
    con.close()


def test_connections_cache_parquet_footers_and_readers_still_see_new_files(tmp_path: Path) -> None:
    """Data files are never rewritten, so the footer cache is safe: a reader opened after a write
    sees the write's new file, and a long-lived reader's pinned snapshot is unchanged."""
    db = tmp_path / "db.ducklake"
    with open_writer(db, source="test") as session:
        session.con.execute("INSERT INTO services VALUES ('a', 't1')")
    early = open_reader(db, install_views=False)
    try:
        assert early.execute("SELECT current_setting('parquet_metadata_cache')").fetchone() == (True,)
        with open_writer(db, source="test") as session:
            session.con.execute("INSERT INTO services VALUES ('b', 't2')")
        assert early.execute("SELECT name FROM services ORDER BY name").fetchall() == [("a",)]
    finally:
        early.close()
    with store_reader(db) as con:
        assert con.execute("SELECT name FROM services ORDER BY name").fetchall() == [("a",), ("b",)]
