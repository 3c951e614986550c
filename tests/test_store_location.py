"""What ``--db`` names and how the store refuses what it must not use: a URL with a password,
a PostgreSQL catalog without a data path, a 0.1 single-file store; every table has a natural key."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from analytics.errors import UserError
from analytics.store.connection import open_reader, open_writer, tables_present
from analytics.store.keys import TABLE_KEYS
from analytics.store.location import redact_url, resolve
from tests.store_query import store_reader


def test_a_path_is_a_sqlite_catalog_with_data_beside_it(tmp_path: Path) -> None:
    loc = resolve(tmp_path / "x.ducklake")
    assert loc.kind == "sqlite"
    assert loc.catalog == str(tmp_path / "x.ducklake")
    assert loc.data_path == str(tmp_path / "x.ducklake.files") + "/"
    assert loc.attach_target() == f"ducklake:sqlite:{tmp_path / 'x.ducklake'}"


def test_a_postgres_url_becomes_a_libpq_string_without_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("GITOPS_DORA_DB_PASSWORD", "s3cr3t")
    loc = resolve("postgresql://dora@db.internal:5433/metrics?sslmode=require", "s3://bucket/prefix")
    assert loc.kind == "postgres"
    assert loc.catalog == "dbname=metrics host=db.internal port=5433 user=dora sslmode=require"
    assert loc.data_path == "s3://bucket/prefix/"
    assert "s3cr3t" not in loc.catalog and "s3cr3t" not in str(loc)
    import os

    assert os.environ["PGPASSWORD"] == "s3cr3t"  # handed to libpq through its own variable


def test_a_password_in_the_url_is_refused_and_not_echoed() -> None:
    with pytest.raises(UserError) as err:
        resolve("postgresql://dora:hunter2@db:5432/x", "/shared")
    assert "hunter2" not in str(err.value)
    assert "GITOPS_DORA_DB_PASSWORD" in str(err.value)


def test_postgres_needs_a_data_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITOPS_DORA_DATA_PATH", raising=False)
    with pytest.raises(UserError, match="--data-path"):
        resolve("postgresql://dora@db:5432/x")


@pytest.mark.parametrize(("url", "shown"), [
    ("https://bob:PW@host/x.git", "https://bob:***@host/x.git"),
    ("https://user:p@ssS3CRET@host/x", "https://user:***@host/x"),
    ("https://ghp_TOKEN@github.com/o/r.git", "https://***@github.com/o/r.git"),
    ("https://host/plain", "https://host/plain"),
])
def test_redact_url_hides_every_credential(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_an_old_single_file_store_is_refused_with_the_command_to_run(tmp_path: Path) -> None:
    old = tmp_path / "old.duckdb"
    con = duckdb.connect(str(old))
    con.execute("CREATE TABLE schema_migrations (version INTEGER)")
    con.close()
    with pytest.raises(UserError, match="migrate-store"):
        resolve(old)


@pytest.fixture(scope="module")
def catalog_in_a_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new embedded store: ``<folder>/gitops-dora.ducklake`` and its ``.files`` beside it."""
    catalog = tmp_path_factory.mktemp("org") / "gitops-dora.ducklake"
    with open_writer(catalog, source="test"):
        pass
    assert catalog.is_file() and Path(f"{catalog}.files").is_dir()
    return catalog


@pytest.mark.parametrize("named", ["the folder holding the catalog", "the catalog's data folder",
                                   "an unrelated folder"])
def test_a_folder_given_as_db_is_refused_with_one_line_naming_the_catalog(
        tmp_path: Path, catalog_in_a_folder: Path, named: str) -> None:
    """--db naming a folder (the demo's, or the store's ``.files``) once failed with SQLite's "disk
    I/O error"; now one line says what --db names and, when there is one, which catalog was meant,
    for a read, a listing and a write alike, and nothing is written."""
    from tests import cli_inprocess
    from tests.child_env import child_env

    catalog = catalog_in_a_folder
    folder = {"the folder holding the catalog": catalog.parent,
              "the catalog's data folder": Path(f"{catalog}.files"),
              "an unrelated folder": tmp_path / "empty"}[named]
    folder.mkdir(exist_ok=True)
    (tmp_path / "incidents.csv").write_text("id,service,created_at\nINC-1,web,2026-11-01T10:00:00Z\n")
    trees = (catalog.parent, tmp_path)
    before = [sorted((p, p.stat().st_size) for p in tree.rglob("*") if p.is_file()) for tree in trees]
    for command in (["metrics"], ["deployments", "--format", "json"], ["import", "incidents.csv"]):
        proc = cli_inprocess.run(["--db", str(folder), *command], env=child_env(), cwd=tmp_path)
        assert proc.returncode == 2, (command, proc.stderr)
        assert proc.stdout == ""
        lines = proc.stderr.splitlines()
        assert len(lines) == 1, proc.stderr
        assert lines[0].startswith(f"error: {folder} is a folder, not a store: --db names the catalog file")
        assert "I/O error" not in lines[0]
        if named == "an unrelated folder":
            assert "did you mean" not in lines[0]
        else:
            assert lines[0].endswith(f"; did you mean --db {catalog}?")
    after = [sorted((p, p.stat().st_size) for p in tree.rglob("*") if p.is_file()) for tree in trees]
    assert after == before  # nothing written, in the store or beside the file


def test_every_table_has_a_declared_natural_key_whose_columns_exist(tmp_path: Path) -> None:
    db = tmp_path / "k.ducklake"
    with open_writer(db, source="test"):
        pass
    con = store_reader(db)
    try:
        tables = tables_present(con)
        assert tables == set(TABLE_KEYS), (tables ^ set(TABLE_KEYS))
        for table, key in TABLE_KEYS.items():
            cols = {r[0] for r in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]
            ).fetchall()}
            assert set(key) <= cols, (table, key, cols)
    finally:
        con.close()


def test_a_catalog_file_duckdb_never_initialised_is_no_store_yet(tmp_path: Path) -> None:
    """A first writer SIGKILLed between creating the SQLite file and DuckLake's tables: readers say
    "no database" (one line), and the next writer makes the store in that file."""
    import sqlite3
    import subprocess
    import sys

    from analytics.store import open_reader

    def bare_sqlite(path: Path) -> None:  # what SQLite leaves before DuckLake creates its tables
        lite = sqlite3.connect(path)
        lite.execute("PRAGMA journal_mode=WAL")
        lite.execute("CREATE TABLE unrelated (x INTEGER)")
        lite.commit()
        lite.close()

    for name, make in (("zero.ducklake", lambda p: p.write_bytes(b"")), ("bare.ducklake", bare_sqlite)):
        db = tmp_path / name
        make(db)
        assert db.stat().st_size > 0 or name == "zero.ducklake"
        assert db.exists() and not resolve(db).exists()
        with pytest.raises(UserError, match="no database at"):
            open_reader(db)
        cli = str(Path(sys.executable).with_name("gitops-dora"))
        proc = subprocess.run([cli, "--db", str(db), "deployments"], capture_output=True, text=True)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert "no database at" in proc.stderr
        with open_writer(db, source="test") as session:
            session.con.execute("INSERT INTO services VALUES ('a', 't')")
        assert resolve(db).exists()
        con = open_reader(db, install_views=False)
        try:
            assert con.execute("SELECT name FROM services").fetchall() == [("a",)]
        finally:
            con.close()


def test_a_data_path_from_the_environment_under_the_home_folder_is_expanded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An environment file gives ``~/...`` unexpanded: the store's files must go to the home folder
    (where DuckDB looks), not to a folder literally named ``~`` under the working directory."""
    home = tmp_path / "home"
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    monkeypatch.setenv("GITOPS_DORA_DATA_PATH", "~/lake-data/")
    loc = resolve(tmp_path / "s.ducklake")
    assert loc.data_path == f"{home}/lake-data/"
    with open_writer(loc, source="test") as session:
        session.con.execute("INSERT INTO repositories (id, url) VALUES ('r', '/r')")
    assert (home / "lake-data").is_dir()
    assert not (work / "~").exists()


@pytest.mark.parametrize("folder", ["q?dir", "hash#dir", "pct%41dir"])
def test_a_store_in_a_folder_whose_name_has_uri_characters_is_read(tmp_path: Path, folder: str) -> None:
    """The catalog is read with SQLite through a ``file:`` URI: an unquoted "?" or "#" ended the
    file name there, and readers said "no database" for a store that was there."""
    loc = resolve(tmp_path / folder / "s.ducklake")
    with open_writer(loc, source="test") as session:
        session.con.execute("INSERT INTO repositories (id, url) VALUES ('r', '/r')")
    assert loc.exists()
    assert loc.read_catalog("SELECT count(*) FROM ducklake_table") not in (None, [(0,)])
    with open_reader(loc) as con:
        assert con.execute("SELECT id FROM repositories").fetchall() == [("r",)]
