"""Installs the metric views (``sql/views/*.sql``) as TEMP views on a connection.

TEMP views work on read-only snapshots and always match the running code's definitions.
Files run in name order, so a view may use views from files sorted before it.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from analytics.metrics.transactions import one_transaction

VIEWS_DIR = Path(__file__).resolve().parent / "sql" / "views"


def view_files() -> list[Path]:
    return sorted(VIEWS_DIR.glob("*.sql"))


def install_views(con: duckdb.DuckDBPyConnection) -> None:
    """Every view file, in one transaction: on DuckLake each statement outside one reads the
    catalog's snapshot again (analytics/metrics/transactions.py)."""
    with one_transaction(con):
        for path in view_files():
            con.execute(path.read_text())


def view_definition(name: str) -> str:
    """The SQL of the file that defines view ``name``."""
    marker = f"VIEW {name} AS"
    for path in view_files():
        text = path.read_text()
        if marker in text:
            return text
    raise RuntimeError(f"no file in {VIEWS_DIR} defines view {name}")

