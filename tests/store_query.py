"""Reading a test's store in assertions: one helper instead of a copy in every test file."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from analytics.store.connection import open_reader
from analytics.store.location import resolve


def store_reader(db: Path | str) -> duckdb.DuckDBPyConnection:
    """A read-only connection on the store's newest snapshot, without the metric views, and with
    the stored rows under the tables' own names: a test that checks what was written must see a
    key registered twice, which the readers' one-row views would hide."""
    return open_reader(db, install_views=False, dimension_views=False)


def query(db: Path | str, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """Rows from the newest snapshot as stored (works while writers run): the tables' own rows,
    without the one-row views product readers put over the shared dimension tables.

    A reader opened for an earlier call is used again while it still reads the newest snapshot of
    the same catalog file (:func:`_newest_snapshot_of`): a reader is pinned to one snapshot, so it
    returns what a new one would, and opening one costs about 30 ms of CPU (tests made about 600 of
    them, most right after another on the same snapshot). A PostgreSQL store, or a catalog
    Python's sqlite3 cannot read, gets a new reader every time."""
    key = _newest_snapshot_of(db)
    if key is None:
        con = store_reader(db)
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()
    path, snapshot = key[0], key[-2]
    with _READERS_LOCK:
        kept = _READERS.pop(path, None)
        if kept is not None and kept[0] != key:  # the store moved on (or was made again)
            kept[1].close()
            kept = None
        # pinned to the snapshot the key names, which open_reader would otherwise look up again
        con = kept[1] if kept is not None else open_reader(
            db, install_views=False, as_of=int(snapshot), dimension_views=False)
        try:
            rows = con.execute(sql, params or []).fetchall()
        except BaseException:
            con.close()
            raise
        _READERS[path] = (key, con)  # the most recently used last
        while len(_READERS) > _KEPT_READERS:
            _READERS.popitem(last=False)[1][1].close()
        return rows


_KEPT_READERS = 4
_READERS: OrderedDict[str, tuple[tuple[Any, ...], duckdb.DuckDBPyConnection]] = OrderedDict()
_READERS_LOCK = threading.Lock()


def _newest_snapshot_of(db: Path | str) -> tuple[Any, ...] | None:
    """What a reader of ``db``'s SQLite catalog would be pinned to: the catalog file (its path,
    device, inode, size and modification time, so a store deleted and made again, or a catalog
    copied over another, is a new key) and its newest snapshot's id and time."""
    try:
        loc = resolve(db)
        if loc.kind != "sqlite":
            return None
        st = os.stat(loc.catalog)
    except Exception:
        return None
    rows = loc.read_catalog("SELECT snapshot_id, snapshot_time FROM ducklake_snapshot"
                            " ORDER BY snapshot_id DESC LIMIT 1")
    if not rows:
        return None
    return (os.path.realpath(loc.catalog), loc.data_path, st.st_dev, st.st_ino, st.st_size,
            st.st_mtime_ns, *rows[0])


def close_kept_readers() -> None:
    """Close the readers :func:`query` kept (at the end of each test module)."""
    with _READERS_LOCK:
        while _READERS:
            _READERS.popitem()[1][1].close()


query_snapshot = query  # the name older tests use


def catalog_reads_of(con: duckdb.DuckDBPyConnection, ask: Callable[[], object]) -> int:
    """The statements DuckDB sent to the DuckLake catalog's database while ``ask`` ran (its query
    log), beyond those of turning the log on and off (none: their functions are named in ``system``,
    so they start no catalog transaction; ``ask`` may switch the log to other types)."""
    def logged(block: Callable[[], object]) -> int:
        con.execute("CALL system.main.truncate_duckdb_logs()")
        con.execute("CALL system.main.enable_logging('QueryLog')")
        try:
            block()
        finally:
            con.execute("CALL system.main.disable_logging()")
        return int(con.execute("SELECT count(*) FROM duckdb_logs WHERE type = 'QueryLog'"
                               " AND message LIKE '%__ducklake_metadata_%'").fetchone()[0])  # type: ignore[index]
    logged(lambda: None)
    return logged(ask) - logged(lambda: None)


GIT_TABLES = {
    "commits": "SELECT * FROM commits", "tags": "SELECT * FROM tags",
    "deployments": "SELECT * FROM deployments",
    "deployment_changes": "SELECT * FROM deployment_changes",
    "collector_state": "SELECT source, key, value FROM collector_state",
    "repositories": "SELECT * EXCLUDE (last_collected_at) FROM repositories",
}


def git_store_dump(db: Path | str) -> dict[str, list[tuple[Any, ...]]]:
    """Every table ``collect git`` writes, rows sorted, clock times left out: two collections of
    the same repository by different code paths must give equal dumps."""
    return {name: sorted(query(db, sql), key=repr) for name, sql in GIT_TABLES.items()}
