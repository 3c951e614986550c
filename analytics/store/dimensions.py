"""The shared dimension tables (services, environments, repositories) as readers see them: one
row per key, whatever the store holds at that snapshot.

Why: DuckLake has no key constraints and two transactions adding rows never conflict, so two
overlapping writers (a PostgreSQL catalog lets them overlap) that both register the same new
service both commit it. The writer that commits second removes the extra row in a transaction
of its own (``connection._drop_concurrent_duplicates``), and the webhook receiver's batches
leave it to the next CLI unit; until then a snapshot holds the key twice, and every join on it
(deployments to services for the team, to environments for the production flag, commits to
repositories) would count each row twice. A reader therefore sees these three tables through a
TEMP view of the same name that keeps one row per key, chosen by the same rule the clean-up
keeps, so a reader shows the same row before the clean-up as after it.

The rule is a function of the rows' values, not of their order in the store: the TEMP copies
the metric engine makes of these views (``analytics.metrics.engine.copy_table``) and the
dashboard's pooled-teams view choose the same row as a reader of the store table would.
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb

from analytics.store.keys import key_of
from analytics.store.literals import sql_identifier

# The order in which the rows of one key are preferred: first the row that carries the value a
# writer may leave unset (a team, the production flag, where the repository was mined), then,
# so the choice never depends on the order the rows are scanned in, every other column.
KEEP_FIRST: dict[str, str] = {
    "services": "team IS NULL, team",
    "environments": "is_production DESC",
    "repositories": ("local_path IS NULL, last_collected_at DESC NULLS LAST, local_path, url, "
                     "web_url, is_bare, is_shallow"),
}
SHARED_DIMENSIONS: tuple[str, ...] = tuple(KEEP_FIRST)


def one_row_per_key(table: str, source: str) -> str:
    """A SELECT of ``source`` (a relation with ``table``'s columns) that keeps one row per key of
    ``table``: the first by :data:`KEEP_FIRST`."""
    keys = ", ".join(key_of(table))
    return (f"SELECT * FROM {source} "
            f"QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY {KEEP_FIRST[table]}) = 1")


def stored_one_row_per_key(table: str, database: str) -> str:
    """:func:`one_row_per_key` of the store ``database``'s table itself (not a TEMP object of
    that name in front of it)."""
    return one_row_per_key(table, f"{sql_identifier(database)}.main.{table}")


def view_statement(table: str, database: str) -> str:
    """The TEMP view of ``table`` with one row per key, over the store ``database``'s table."""
    return f"CREATE OR REPLACE TEMP VIEW {table} AS {stored_one_row_per_key(table, database)}"


def install_views(con: duckdb.DuckDBPyConnection, database: str,
                  tables: Iterable[str] = SHARED_DIMENSIONS) -> None:
    """Put the one-row-per-key TEMP views in front of the store's tables on a read-only
    connection. Creating them binds each against the catalog the connection has loaded already
    (no data file is read until a query uses one). Never on a writer's connection: a TEMP view
    shadows the table its MERGEs write to."""
    for table in tables:
        con.execute(view_statement(table, database))
