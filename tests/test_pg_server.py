"""The real PostgreSQL server of tests/pg_server.py, and DuckLake with its catalog in it (issue #11).

What these tests pin down (duckdb 1.5.5, duckdb-extension-ducklake / -postgres-scanner 1.5.5):

* ``ATTACH 'ducklake:postgres:dbname=DB host=127.0.0.1 port=PORT user=dora' AS lake
  (DATA_PATH '<dir>/')`` with the password in ``os.environ["PGPASSWORD"]`` works; the text after
  ``ducklake:postgres:`` is a libpq keyword/value string (the ``postgresql://dora@host:port/db`` URI
  form works as well). Both ``ducklake`` and ``postgres_scanner`` must be LOADed from the wheel
  files first: with autoloading off, DuckLake otherwise looks for postgres_scanner under
  ``~/.duckdb/extensions`` and fails.
* A password file works instead of PGPASSWORD: ``PGPASSFILE`` (or ``$HOME/.pgpass``) with mode 0600
  and a line ``127.0.0.1:PORT:*:dora:PASSWORD``; without either, ATTACH fails with
  "fe_sendauth: no password supplied", so the server really checks the password.
* Two processes writing into the same DuckLake table at once both land all their rows; small inserts
  are inlined into the catalog (``ducklake_inlined_data_*`` tables in PostgreSQL), larger ones become
  Parquet files under DATA_PATH, listed in ``ducklake_data_file``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pytest

from tests.pg_server import PgDatabase, PgServer, PgServerError

NO_AUTOLOAD = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}


def extension_file(package: str, name: str) -> Path:
    """``<site-packages>/<package>/extensions/v*/<name>.duckdb_extension`` of an installed wheel."""
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.submodule_search_locations, f"python package {package} is not installed"
    found = sorted(
        p
        for loc in spec.submodule_search_locations
        for p in Path(loc).glob(f"extensions/v*/{name}.duckdb_extension")
    )
    assert found, f"{package} has no extensions/v*/{name}.duckdb_extension"
    return found[-1]


def extension_files() -> list[Path]:
    return [
        extension_file("duckdb_extension_ducklake", "ducklake"),
        extension_file("duckdb_extension_postgres_scanner", "postgres_scanner"),
    ]


def lake_connection() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(config=NO_AUTOLOAD)
    for path in extension_files():
        con.execute(f"LOAD '{path}'")
    return con


# A writer process: LOAD, ATTACH (password from the inherited PGPASSWORD), say ready, wait for "go",
# then one INSERT per row (each its own DuckLake snapshot) and one bulk INSERT (a Parquet file).
WRITER = r"""
import sys, time
from pathlib import Path
import duckdb
attach, go, wid, n, *extensions = sys.argv[1:]
wid, n = int(wid), int(n)
con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
for path in extensions:
    con.execute(f"LOAD '{path}'")
con.execute(attach)
Path(f"{go}.{wid}").touch()
deadline = time.monotonic() + 60
while not Path(go).exists():
    if time.monotonic() > deadline:
        sys.exit("no go signal")
    time.sleep(0.005)
began = time.time()
for i in range(n):
    con.execute("INSERT INTO lake.events VALUES (?, ?)", [wid, i])
con.execute("INSERT INTO lake.events SELECT ?, 1000 + range FROM range(20000)", [wid])
ended = time.time()
con.close()
print("done", wid, began, ended)
"""


def test_server_listens_on_loopback_with_password_auth(pg_server: PgServer) -> None:
    assert pg_server.url == f"postgresql://dora@127.0.0.1:{pg_server.port}/dora"
    assert pg_server.password not in pg_server.url
    assert pg_server.password in pg_server.dsn_with_password()
    assert pg_server.start_seconds > 0
    out = pg_server.psql("SELECT current_user, current_database(), current_setting('max_connections')")
    assert out.strip() == "dora|dora|200"
    settings = pg_server.admin_sql("SELECT current_setting('listen_addresses'), current_setting('fsync')")
    assert settings.strip() == "127.0.0.1|off"
    # Without a password the TCP login is refused (PGPASSFILE pointed at nothing, no PGPASSWORD).
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGPASSFILE"] = os.devnull
    refused = subprocess.run(
        [str(pg_server.bindir / "psql"), "-X", "-d", pg_server.libpq_dsn(), "-c", "SELECT 1"],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert refused.returncode != 0
    assert "password" in refused.stderr
    # psql with the keyword/value string carrying the password (the documented check form).
    with_pw = subprocess.run(
        [str(pg_server.bindir / "psql"), "-X", "-At", "-d", pg_server.dsn_with_password(), "-c", "SELECT 7"],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert with_pw.stdout.strip() == "7", with_pw.stderr


def test_each_test_gets_a_fresh_empty_database(pg_server: PgServer, pg_database: PgDatabase) -> None:
    assert os.environ["PGPASSWORD"] == pg_server.password  # the fixture set it for this test
    assert pg_database.url == f"postgresql://dora@127.0.0.1:{pg_server.port}/{pg_database.name}"
    assert pg_database.psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").strip() == "0"
    pg_database.psql("CREATE TABLE scratch (a int)")
    other = pg_server.new_database(pg_database.name + "_b")
    assert other.endswith("_b")
    tables = pg_server.psql(
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", pg_database.name + "_b"
    )
    assert tables.strip() == "0"
    pg_server.drop_database(pg_database.name + "_b")
    with pytest.raises(ValueError):
        pg_server.new_database("Bad-Name; DROP")


def test_ducklake_catalog_in_postgres_with_two_concurrent_writer_processes(
    pg_database: PgDatabase, tmp_path: Path
) -> None:
    attach = pg_database.attach_sql("lake", tmp_path / "data")
    assert attach == (
        f"ATTACH 'ducklake:postgres:dbname={pg_database.name} host=127.0.0.1 port={pg_database.port} "
        f"user=dora' AS lake (DATA_PATH '{tmp_path / 'data'}/')"
    )
    assert pg_database.password not in attach
    con = lake_connection()
    con.execute(attach)  # password: PGPASSWORD, set by the pg_database fixture
    con.execute("CREATE TABLE lake.events (writer INTEGER, i INTEGER)")

    go = tmp_path / "go"
    per_writer = 25
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, attach, str(go), str(wid), str(per_writer)]
            + [str(p) for p in extension_files()],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        for wid in (1, 2)
    ]
    try:
        deadline = time.monotonic() + 60
        while not all(Path(f"{go}.{wid}").exists() for wid in (1, 2)):
            assert all(w.poll() is None for w in writers), [w.communicate() for w in writers]
            assert time.monotonic() < deadline, "writers did not attach within 60 s"
            time.sleep(0.01)
        go.touch()  # both attached: start writing at the same moment
        results = [w.communicate(timeout=180) for w in writers]
    finally:
        for w in writers:
            if w.poll() is None:
                w.kill()
    spans = []
    for w, (out, err) in zip(writers, results, strict=True):
        assert w.returncode == 0, err
        assert out.startswith("done"), (out, err)
        spans.append(tuple(float(x) for x in out.split()[2:4]))
    (began_1, ended_1), (began_2, ended_2) = spans
    assert began_1 < ended_2 and began_2 < ended_1, f"the writers did not overlap: {spans}"

    rows = con.sql(
        "SELECT writer, count(*), count(DISTINCT i), sum(CASE WHEN i < 1000 THEN 1 ELSE 0 END) "
        "FROM lake.events GROUP BY writer ORDER BY writer"
    ).fetchall()
    assert rows == [
        (1, per_writer + 20000, per_writer + 20000, per_writer),
        (2, per_writer + 20000, per_writer + 20000, per_writer),
    ]
    con.close()

    # The catalog really lives in PostgreSQL: DuckLake's tables, one snapshot per commit, our table,
    # and the two bulk inserts as Parquet files under DATA_PATH.
    catalog = set(
        pg_database.psql(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_name LIKE 'ducklake%'"
        ).split()
    )
    assert {"ducklake_metadata", "ducklake_snapshot", "ducklake_table", "ducklake_data_file"} <= catalog
    assert pg_database.psql("SELECT table_name FROM ducklake_table WHERE end_snapshot IS NULL").split() == [
        "events"
    ]
    snapshots = int(pg_database.psql("SELECT count(*) FROM ducklake_snapshot"))
    assert snapshots >= 2 * (per_writer + 1) + 1  # create table + every insert, from both writers
    files = pg_database.psql("SELECT path FROM ducklake_data_file WHERE end_snapshot IS NULL").split()
    assert len(files) >= 2
    parquet = list((tmp_path / "data").rglob("*.parquet"))
    assert len(parquet) >= 2

    # The same catalog seen through duckdb's postgres extension (no psql needed).
    pgcon = lake_connection()
    pgcon.execute(f"ATTACH '{pg_database.dsn}' AS pgc (TYPE postgres, READ_ONLY)")
    assert pgcon.sql("SELECT count(*) FROM pgc.public.ducklake_snapshot").fetchone() == (snapshots,)
    pgcon.close()


def test_uri_form_and_password_file(
    pg_database: PgDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PGPASSWORD")
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "missing"))
    con = lake_connection()
    with pytest.raises(duckdb.Error, match="no password supplied"):
        con.execute(pg_database.attach_sql("lake", tmp_path / "data"))

    passfile = tmp_path / "pgpass"
    passfile.write_text(f"127.0.0.1:{pg_database.port}:*:{pg_database.user}:{pg_database.password}\n")
    passfile.chmod(0o600)  # libpq ignores a password file that group or others can read
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    con.execute(pg_database.attach_sql("lake", tmp_path / "data"))
    con.execute("CREATE TABLE lake.t AS SELECT 42 AS answer")
    con.execute("DETACH lake")
    # The libpq URI form, without a password in it, works too.
    con.execute(
        f"ATTACH 'ducklake:{pg_database.url.replace('postgresql://', 'postgres:postgresql://')}' AS lake2"
    )
    assert con.sql("SELECT answer FROM lake2.t").fetchall() == [(42,)]
    con.close()


def test_stop_removes_the_folder_and_frees_the_port() -> None:
    try:
        server = PgServer().start()
    except PgServerError as exc:
        pytest.skip(f"PostgreSQL server cannot start: {exc}")
    root, port = server.root, server.port
    assert root is not None and (root / "data" / "PG_VERSION").exists()
    assert root.stat().st_mode & 0o077 == 0
    server.stop()
    server.stop()  # twice is fine
    assert not root.exists()
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_failed_start_raises_with_the_reason_and_cleans_up() -> None:
    # A fake bindir whose initdb fails: in a world-readable folder so the postgres user may run it.
    fake = Path(tempfile.mkdtemp(prefix="gitops-dora-fakepg-"))
    try:
        fake.chmod(0o755)
        for name in ("initdb", "pg_ctl", "postgres", "psql"):
            script = fake / name
            script.write_text("#!/bin/sh\necho 'initdb: error: the disk is on fire' >&2\nexit 1\n")
            script.chmod(0o755)
        server = PgServer(bindir=fake)
        with pytest.raises(
            PgServerError, match=r"initdb failed \(exit 1\): initdb: error: the disk is on fire"
        ):
            server.start()
        assert server.root is None
    finally:
        shutil.rmtree(fake, ignore_errors=True)
