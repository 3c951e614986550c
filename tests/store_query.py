"""Reading a test's DuckDB store in assertions: one helper instead of a copy in every test file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from analytics.store.connection import open_reader


def query(db: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """Rows from the database file itself, read-only (no writer may hold it)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def query_snapshot(db: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """Rows from the published snapshot, as every reader sees them (works while a writer holds the file)."""
    con = open_reader(db, install_views=False)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()
