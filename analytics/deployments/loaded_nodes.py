"""Attribution's commit graph built while a repository's first load runs.

Attribution's first steps after the commits' load (attribution.sql steps 3-5: ``_attr_nodes``,
each commit's first parent, the further parents of merges) read every commit of the shipped
repositories back from the store, number them and match each parent sha to its number: about
0.1 s of CPU at 100k commits, after git's exit in ``collect git``, where nothing runs beside
it. When the load is a repository's first (the store holds none of its commits), the same rows
are built here from each chunk as it is loaded, while git still walks. A first parent that is
the commit numbered next (most of them: git lists a commit's first parent right after it unless
a merged branch comes in between) is recognised by number; the other edges are matched by sha
against that chunk's commits (those left open are tried again with every later chunk, and once
against all commits at the end), so the Python side only holds the exceptions.
:meth:`LoadedNodes.take` hands the numbered commits and the graph to attribution when the
repository is the only one shipped (then they are exactly steps 3-5's; otherwise those steps
run as always). The numbers differ from step 3's (chunk order instead of the scan's), which no
result depends on: every later step joins on them or takes a minimum over unique commits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from analytics.store.literals import execute

# the statements of loaded_nodes.sql, in order (split at its "-- statement" lines)
_NUMBERED, _STEP, _OPEN, _CLOSED, _LAST = (
    (Path(__file__).resolve().parent / "loaded_nodes.sql").read_text().split("\n-- statement\n"))
TABLE = "_attr_loaded_nodes"
_WORK_TABLES = "_attr_loaded_step", "_attr_loaded_open"


class LoadedNodes:
    """The numbered commits of ``repo`` loaded so far (TEMP table :data:`TABLE`), and their
    parent edges matched so far, kept sparse: a commit whose first parent is the commit numbered
    next and that has no further parent (most of a history) has no entry in ``special``; the
    others map to ``[first parent's number (-1: none), further parents' numbers or None]``, the
    further parents in the order they were matched (``positions`` puts them in parent order)."""

    def __init__(self, repo: str) -> None:
        self.repo = repo
        self.count = 0
        self.special: dict[int, list[Any]] = {}
        self.positions: dict[int, list[int]] = {}
        self.open = 0  # edges not matched yet
        self.usable = True

    def add(self, con: duckdb.DuckDBPyConnection, source: str, rows: int,
            params: list[str] | None = None) -> None:
        """Number on the ``rows`` commits that ``source`` (a subquery on one load's chunk files,
        with ``params``) gives, the very rows the load inserted, and match the parent edges
        against them."""
        select = _NUMBERED.format(offset=int(self.count), source=source)
        if self.count == 0:
            numbered = execute(con, f"CREATE OR REPLACE TEMP TABLE {TABLE} AS {select}", params).fetchone()
            execute(con, "CREATE OR REPLACE TEMP TABLE _attr_loaded_open "
                         "(child INTEGER, pos INTEGER, psha VARCHAR)")
        else:
            numbered = execute(con, f"INSERT INTO {TABLE} {select}", params).fetchone()
        if not numbered or numbered[0] != rows:
            # Not the rows the load inserted (DuckDB 1.5 repeated rows of this select once
            # lead() was added to its window): the numbering is not used, step 3 reads the store.
            self.usable = False
        execute(con, _STEP.format(offset=int(self.count)))
        row = execute(con, _OPEN).fetchone()
        self.open = int(row[0]) if row else 0
        self._close(execute(con, _CLOSED).fetchall())
        self.count += rows

    def _close(self, edges: list[tuple[int, int, int | None]]) -> None:
        """Record matched edges; a first parent with no number (a root, or a commit not loaded)
        is -1, a further parent with none is left out (attribution.sql step 5's inner join)."""
        special, positions = self.special, self.positions
        for child, pos, parent in edges:
            node = special.get(child)
            if pos == 0:
                first = -1 if parent is None else parent
                if node is None:
                    special[child] = [first, None]
                else:
                    node[0] = first
            elif parent is None:
                continue
            elif node is None:  # the first parent is the next commit unless its edge says otherwise
                special[child] = [child + 1, [parent]]
                positions[child] = [pos]
            elif node[1] is None:
                node[1] = [parent]
                positions[child] = [pos]
            else:  # an octopus merge: its parents are put in order by graph()
                node[1].append(parent)
                positions[child].append(pos)

    def take(self, con: duckdb.DuckDBPyConnection) -> bool:
        """Rename the table to ``_attr_nodes`` if the shipped repositories (``_attr_shipped``)
        are exactly this one, and say so (then :meth:`graph` is complete); otherwise drop it
        (attribution reads the store)."""
        row = execute(con,
            "SELECT count(*) = 1 AND bool_and(repository = $1) FROM "
            "(SELECT DISTINCT repository FROM _attr_shipped WHERE repository IS NOT NULL)",
            [self.repo]).fetchone()
        if self.count and self.usable and row and row[0]:
            execute(con, f"ALTER TABLE {TABLE} RENAME TO _attr_nodes")
            if self.open:
                self._close(execute(con, _LAST).fetchall())
            self._drop(con)
            return True
        execute(con, f"DROP TABLE IF EXISTS {TABLE}")
        self._drop(con)
        return False

    def graph(self) -> dict[int, list[Any]]:
        """The commits that are not plain (first parent numbered next, no further parent):
        ``[first parent or -1, further parents in parent order or None]``, as attribution.sql
        steps 4 and 5 give them."""
        special = self.special
        for child, pos in self.positions.items():
            if len(pos) > 1:
                node = special[child]
                node[1] = [parent for _, parent in sorted(zip(pos, node[1], strict=True))]
        return special

    @staticmethod
    def _drop(con: duckdb.DuckDBPyConnection) -> None:
        execute(con, "; ".join(f"DROP TABLE IF EXISTS {name}" for name in _WORK_TABLES))
