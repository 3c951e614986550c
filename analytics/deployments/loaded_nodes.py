"""Attribution's commit numbering built while a repository's first load runs.

Attribution's first step after the commits' load (``_attr_nodes``, attribution.sql step 3)
reads every commit of the shipped repositories back from the store and numbers them: about
0.05 s of CPU at 100k commits, after git's exit in ``collect git``, where nothing runs beside
it. When the load is a repository's first (the store holds none of its commits), the same rows
are built here from each chunk as it is loaded, while git still walks, and
:meth:`LoadedNodes.take` hands them to attribution when the repository is the only one shipped
(then they are exactly step 3's rows; otherwise step 3 runs as always). The numbers differ
from step 3's (chunk order instead of the scan's), which no result depends on: every later
step joins on them or takes a minimum over unique commits.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from analytics.store.literals import execute

_SQL = (Path(__file__).resolve().parent / "loaded_nodes.sql").read_text()
TABLE = "_attr_loaded_nodes"


class LoadedNodes:
    """The numbered commits of ``repo`` loaded so far (TEMP table :data:`TABLE`)."""

    def __init__(self, repo: str) -> None:
        self.repo = repo
        self.count = 0

    def add(self, con: duckdb.DuckDBPyConnection, source: str, rows: int,
            params: list[str] | None = None) -> None:
        """Number on the ``rows`` commits that ``source`` (a subquery on one load's chunk files,
        with ``params``) gives: the very rows the load inserted."""
        select = _SQL.format(offset=int(self.count), source=source)
        if self.count == 0:
            execute(con, f"CREATE OR REPLACE TEMP TABLE {TABLE} AS {select}", params)
        else:
            execute(con, f"INSERT INTO {TABLE} {select}", params)
        self.count += rows

    def take(self, con: duckdb.DuckDBPyConnection) -> bool:
        """Rename the table to ``_attr_nodes`` if the shipped repositories (``_attr_shipped``)
        are exactly this one, and say so; otherwise drop it (attribution reads the store)."""
        row = execute(con,
            "SELECT count(*) = 1 AND bool_and(repository = $1) FROM "
            "(SELECT DISTINCT repository FROM _attr_shipped WHERE repository IS NOT NULL)",
            [self.repo]).fetchone()
        if self.count and row and row[0]:
            execute(con, f"ALTER TABLE {TABLE} RENAME TO _attr_nodes")
            return True
        execute(con, f"DROP TABLE IF EXISTS {TABLE}")
        return False
