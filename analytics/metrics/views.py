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


# A store written before migration 1601 has no change times, and only a writer migrates: a reader
# of such a store (``metrics`` straight after an upgrade, the dashboard) gets a TEMP view of that
# name in front of the store's table, with the columns NULL, so every change's times are looked
# up in commits as before 1601 (the rowid passed through, which the views read).
_BEFORE_CHANGE_TIMES = (
    "CREATE OR REPLACE TEMP VIEW deployment_changes AS SELECT rowid AS rowid, deployment_id, repo, sha,"
    " NULL::TIMESTAMPTZ AS author_time, NULL::TIMESTAMPTZ AS committer_time"
    " FROM {database}.main.deployment_changes"
)


def install_views(con: duckdb.DuckDBPyConnection) -> None:
    """Every view file, in one transaction: on DuckLake each statement outside one reads the
    catalog's snapshot again (analytics/metrics/transactions.py). On a store without the change
    times (before migration 1601) the views are installed again over ``_BEFORE_CHANGE_TIMES``;
    the check costs nothing on a current store (it is the views' own binding that fails)."""
    try:
        _install(con)
    except duckdb.BinderException as exc:
        if "author_time" not in str(exc):
            raise
        row = con.execute("SELECT system.main.current_database()").fetchone()
        database = '"' + str(row[0] if row else "main").replace('"', '""') + '"'
        con.execute(_BEFORE_CHANGE_TIMES.format(database=database))
        _install(con)


def _install(con: duckdb.DuckDBPyConnection) -> None:
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

