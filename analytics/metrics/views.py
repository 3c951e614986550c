"""Installs the metric views (``sql/views/*.sql``) as TEMP views on a connection.

TEMP views work on read-only snapshots and always match the running code's definitions.
Files run in name order, so a view may use views from files sorted before it.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

VIEWS_DIR = Path(__file__).resolve().parent / "sql" / "views"


def view_files() -> list[Path]:
    return sorted(VIEWS_DIR.glob("*.sql"))


def install_views(con: duckdb.DuckDBPyConnection) -> None:
    for path in view_files():
        con.execute(path.read_text())


def reinstall_view(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Run again the file that defines view ``name`` (after a caller replaced it for a while)."""
    marker = f"VIEW {name} AS"
    for path in view_files():
        text = path.read_text()
        if marker in text:
            con.execute(text)
            return
    raise RuntimeError(f"no file in {VIEWS_DIR} defines view {name}")
