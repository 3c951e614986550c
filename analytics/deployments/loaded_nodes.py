"""Attribution's commit graph built while a repository's first load runs.

Attribution's first steps after the commits' load (attribution.sql steps 3-5: ``_attr_nodes``,
each commit's first parent, the further parents of merges) read every commit of the shipped
repositories back from the store, number them and match each parent sha to its number: about
0.1 s of CPU at 100k commits, after git's exit in ``collect git``, where nothing runs beside
it. When the load is a repository's first (the store holds none of its commits), the same rows
are built here from each chunk as it is loaded, while git still walks, and each chunk's parent
edges are matched against that chunk's commits (those left open are tried again with every
later chunk, and once against all commits at the end). :meth:`LoadedNodes.take` hands the
numbered commits and the graph to attribution when the repository is the only one shipped (then
they are exactly steps 3-5's; otherwise those steps run as always). The numbers differ from
step 3's (chunk order instead of the scan's), which no result depends on: every later step joins
on them or takes a minimum over unique commits.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from analytics.store.literals import execute

# the statements of loaded_nodes.sql, in order (split at its "-- statement" lines)
_NUMBERED, _STEP, _OPEN, _CLOSED, _LAST = (
    (Path(__file__).resolve().parent / "loaded_nodes.sql").read_text().split("\n-- statement\n"))
TABLE = "_attr_loaded_nodes"
_WORK_TABLES = "_attr_loaded_step", "_attr_loaded_open"


class LoadedNodes:
    """The numbered commits of ``repo`` loaded so far (TEMP table :data:`TABLE`), and their
    parent edges matched so far: ``first[i]`` is commit i's first parent's number (-1: none, or
    not found yet), ``further`` the further parents' numbers of merge commits, in the order they
    were matched (``positions`` holds their positions for the few that have several)."""

    def __init__(self, repo: str) -> None:
        self.repo = repo
        self.count = 0
        self.first: list[int] = []
        self.further: dict[int, list[int]] = {}
        self.positions: dict[int, list[int]] = {}
        self.open = 0  # edges not matched yet

    def add(self, con: duckdb.DuckDBPyConnection, source: str, rows: int,
            params: list[str] | None = None) -> None:
        """Number on the ``rows`` commits that ``source`` (a subquery on one load's chunk files,
        with ``params``) gives, the very rows the load inserted, and match the parent edges
        against them."""
        select = _NUMBERED.format(offset=int(self.count), source=source)
        if self.count == 0:
            execute(con, f"CREATE OR REPLACE TEMP TABLE {TABLE} AS {select}", params)
            execute(con, "CREATE OR REPLACE TEMP TABLE _attr_loaded_open "
                         "(child INTEGER, pos INTEGER, psha VARCHAR)")
        else:
            execute(con, f"INSERT INTO {TABLE} {select}", params)
        execute(con, _STEP.format(offset=int(self.count)))
        row = execute(con, _OPEN).fetchone()
        self.open = int(row[0]) if row else 0
        self.first.extend([-1] * rows)
        self._close(execute(con, _CLOSED).fetchall())
        self.count += rows

    def _close(self, edges: list[tuple[int, int, int]]) -> None:
        first, further, positions = self.first, self.further, self.positions
        for child, pos, parent in edges:
            if pos == 0:
                first[child] = parent
            elif child in further:  # an octopus merge: its parents are put in order by graph()
                further[child].append(parent)
                positions.setdefault(child, []).append(pos)
            else:
                further[child] = [parent]
                positions[child] = [pos]

    def take(self, con: duckdb.DuckDBPyConnection) -> bool:
        """Rename the table to ``_attr_nodes`` if the shipped repositories (``_attr_shipped``)
        are exactly this one, and say so (then :meth:`graph` is complete); otherwise drop it
        (attribution reads the store)."""
        row = execute(con,
            "SELECT count(*) = 1 AND bool_and(repository = $1) FROM "
            "(SELECT DISTINCT repository FROM _attr_shipped WHERE repository IS NOT NULL)",
            [self.repo]).fetchone()
        if self.count and row and row[0]:
            execute(con, f"ALTER TABLE {TABLE} RENAME TO _attr_nodes")
            if self.open:
                self._close(execute(con, _LAST).fetchall())
            self._drop(con)
            return True
        execute(con, f"DROP TABLE IF EXISTS {TABLE}")
        self._drop(con)
        return False

    def graph(self) -> tuple[list[int], dict[int, list[int]]]:
        """Each commit's first parent (attribution.sql step 4's list) and the further parents of
        merge commits in parent order (step 5's, as attribution's ``_Graph`` keeps them)."""
        further = self.further
        for child, pos in self.positions.items():
            if len(pos) > 1:
                further[child] = [parent for _, parent in sorted(zip(pos, further[child], strict=True))]
        return self.first, further

    @staticmethod
    def _drop(con: duckdb.DuckDBPyConnection) -> None:
        execute(con, "; ".join(f"DROP TABLE IF EXISTS {name}" for name in _WORK_TABLES))
