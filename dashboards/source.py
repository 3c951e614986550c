"""Where the dashboard's data comes from: the read snapshot of the database the CLI selected.

The cache key of every query includes the snapshot's modification stamp, so a collection run that
publishes a new snapshot refreshes the pages without a restart.
"""

from __future__ import annotations

import os
import threading
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


_SHARED: dict[str, tuple[int, duckdb.DuckDBPyConnection]] = {}
_SHARED_LOCK = threading.RLock()


@contextmanager
def reader(db: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read connection on the current snapshot, shared by all sessions (queries take turns).

    Opening a connection installs every metric view, which costs more than most dashboard
    queries, so one connection per published snapshot is kept and replaced when a collection
    publishes a new one. Without a snapshot the main file is opened per query and closed at once,
    so the dashboard never holds the file a collector needs to write.
    """
    if not snapshot_path(db).exists():
        con = open_reader(db)
        try:
            yield con
        finally:
            con.close()
        return
    key = str(db.resolve())
    with _SHARED_LOCK:
        stamp = data_stamp(db)
        entry = _SHARED.get(key)
        if entry is None or entry[0] != stamp:
            if entry is not None:
                entry[1].close()  # the replaced snapshot's inode is released here
            _SHARED[key] = (stamp, open_reader(db))
        yield _SHARED[key][1]


def existing_relations(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Tables and views (including the TEMP metric views) visible on this connection."""
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables UNION SELECT view_name FROM duckdb_views()"
    ).fetchall()
    return {r[0] for r in rows}
