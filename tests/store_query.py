"""Reading a test's store in assertions: one helper instead of a copy in every test file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from analytics.store.connection import open_reader


def store_reader(db: Path | str) -> duckdb.DuckDBPyConnection:
    """A read-only connection on the store's newest snapshot, without the metric views."""
    return open_reader(db, install_views=False)


def query(db: Path | str, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """Rows from the newest snapshot, as every reader sees them (works while writers run)."""
    con = store_reader(db)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


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
