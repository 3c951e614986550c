"""Where the dashboard's data comes from: the read snapshot of the database the CLI selected.

The cache key of every query includes the snapshot's modification stamp, so a collection run that
publishes a new snapshot refreshes the pages without a restart.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from analytics.store.connection import open_reader, snapshot_path

DB_ENV = "GITOPS_DORA_DB"
CONFIG_ENV = "GITOPS_DORA_CONFIG"
DEFAULT_DB = "gitops-dora.duckdb"


def db_path() -> Path:
    return Path(os.environ.get(DB_ENV) or DEFAULT_DB)


def config_path() -> Path | None:
    value = os.environ.get(CONFIG_ENV)
    return Path(value) if value else None


def data_stamp(db: Path) -> int:
    """mtime of what readers open (the snapshot, else the main file); 0 when there is no database."""
    for candidate in (snapshot_path(db), db):
        try:
            return candidate.stat().st_mtime_ns
        except OSError:
            continue
    return 0


@contextmanager
def reader(db: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = open_reader(db)
    try:
        yield con
    finally:
        con.close()


def existing_relations(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Tables and views (including the TEMP metric views) visible on this connection."""
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables UNION SELECT view_name FROM duckdb_views()"
    ).fetchall()
    return {r[0] for r in rows}
