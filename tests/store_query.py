"""Reading a test's store in assertions: one helper instead of a copy in every test file."""

from __future__ import annotations

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
