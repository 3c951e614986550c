"""Which deployment shipped which commit (``deployment_changes``), computed over the stored commit graph.

Rule: a commit belongs to the first successful deployment, by time, of the same service and
environment whose revision contains it (the commit is the revision or one of its ancestors).
That equals ``git rev-list D_k --not D_1 .. D_{k-1}`` for deployments in time order, but is done
in one walk of the ``commits.parents`` graph per scope: deployments are visited in order, and
each walks back from its revision only through commits no earlier deployment reached. Every
commit is visited once per (service, environment), so the cost is O(commits + deployments).

Order of deployments with equal ``deployed_at``: the one whose revision has the older committer
time goes first (it is most likely the ancestor), then the smaller deployment id.

Failed deployments ship nothing: their commits go to the next successful deployment.
A deployment that ships several repositories (``deployment_revisions``) walks each repository
from its own revision, so it gets each repository's commits since that repository's previous
deployment to the same service and environment.
A revision is resolved within the deployment's ``repository`` as a full sha, a tag name, or an
unambiguous abbreviated sha (4+ hex digits); unresolved revisions are recorded as a data warning.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import duckdb

from analytics.deployments.loaded_nodes import LoadedNodes
from analytics.store.literals import execute, sql_string

Scope = tuple[str, str]
# the statements of attribution.sql, in order (split at its "-- statement" lines)
_SQL = (Path(__file__).resolve().parent / "attribution.sql").read_text().split("\n-- statement\n")
(_ALL_DEPLOYMENTS, _SCOPES, _SHIPPED, _SHIPPED_NO_REVISIONS, _CANDIDATES, _NODES, _FIRST_PARENTS,
 _MERGES, _RESOLVED, _STARTS, _WALKS, _DEPS, _WALK_INPUT, _UNRESOLVED, _STORED) = _SQL


class _Graph:
    """The commits of every shipped repository, numbered 0..n-1 in the TEMP table ``_attr_nodes``.

    Each commit's first parent comes back as one list aligned with the numbers (no Python loop
    builds the graph); only the further parents of merge commits go into a dict, and the walk
    follows first-parent chains without pushing them on a stack.
    """

    spans = False  # walk() gives one number per commit

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        execute(con, _NODES)
        self.first: list[int] = [parent for (parent,) in execute(con, _FIRST_PARENTS).fetchall()]
        merges = execute(con, _MERGES).fetchone()
        self.extra: dict[int, list[int]] = {}
        children, parents = merges if merges else (None, None)
        for child, parent in zip(children or [], parents or [], strict=True):
            self.extra.setdefault(child, []).append(parent)

    @property
    def size(self) -> int:
        return len(self.first)

    def edges(self) -> tuple[list[int], dict[int, list[int]]]:
        """Each commit's first parent (-1: none) and the further parents of merges."""
        return self.first, self.extra

    def walk(self, start: int, visited: bytearray, out: list[int]) -> None:
        """Append to ``out`` every commit reachable from ``start`` that is not visited yet."""
        first, further, append = self.first, self.extra.get, out.append
        stack = [start]
        while stack:
            current = stack.pop()
            while current >= 0 and not visited[current]:
                visited[current] = 1
                append(current)
                more = further(current)
                if more is not None:
                    stack.extend(more)
                current = first[current]


class _LoadedGraph:
    """The same graph built while a repository's first load ran (analytics/deployments/
    loaded_nodes.py), kept sparse: a commit without an entry has the next number as its first
    parent and no further parent; the walk visits the commits in the same order as
    :meth:`_Graph.walk` on the equivalent lists."""

    def __init__(self, size: int, special: dict[int, list[Any]]) -> None:
        self.size, self.special = size, special

    def edges(self) -> tuple[list[int], dict[int, list[int]]]:
        """:meth:`_Graph.edges`' lists, built from the sparse form."""
        first = list(range(1, self.size + 1))
        extra: dict[int, list[int]] = {}
        for child, (parent, more) in self.special.items():
            first[child] = parent
            if more is not None:
                extra[child] = list(more)
        return first, extra

    # walk() gives spans: out holds (first, last + 1) number pairs of consecutive commits
    spans = True

    def walk(self, start: int, visited: bytearray, out: list[int]) -> None:
        """Append to ``out`` every commit reachable from ``start`` that is not visited yet, as
        spans of consecutive numbers (``lo, hi`` for lo, lo + 1, ..., hi - 1, in walk order):
        a first-parent chain through commits without an entry is one span, so the walk's
        output and the pairs' CSV hold a span per chain instead of a number per commit."""
        special, append = self.special.get, out.append
        stack = [start]
        while stack:
            current = stack.pop()
            lo = current
            while current >= 0 and not visited[current]:
                visited[current] = 1
                node = special(current)
                if node is None:
                    current += 1
                else:
                    append(lo)
                    append(current + 1)
                    if node[1] is not None:
                        stack.extend(node[1])
                    current = lo = node[0]
            if current > lo:
                append(lo)
                append(current)


def _graph(con: duckdb.DuckDBPyConnection, loaded: LoadedNodes | None) -> _Graph | _LoadedGraph:
    """The commit graph: matched while the commits loaded when ``loaded`` may stand for step 3
    (:meth:`LoadedNodes.take`), else read from the stored commits (steps 3-5)."""
    if loaded is not None and loaded.take(con):
        return _LoadedGraph(loaded.count, loaded.graph())
    return _Graph(con)


def _connection(db: Any) -> duckdb.DuckDBPyConnection:
    con = getattr(db, "con", db)
    if not isinstance(con, duckdb.DuckDBPyConnection):
        raise TypeError("attribute_changes needs a WriteSession or a DuckDB connection")
    return con


def _scopes(
    con: duckdb.DuckDBPyConnection, service: str | None, environment: str | None,
    deployment_ids: Iterable[str] | None, scopes: Iterable[Scope] | None,
) -> tuple[set[Scope], bool]:
    """The scopes named by the arguments, and False when the caller selected every scope."""
    found: set[Scope] = set(scopes or ())
    if deployment_ids is not None:
        ids = list(deployment_ids)
        if ids:
            rows = execute(con,
                "SELECT DISTINCT service, environment FROM deployments "
                "WHERE id IN (SELECT unnest($1::VARCHAR[]))", [ids]
            ).fetchall()
            found.update((str(s), str(e)) for s, e in rows)
        return found, True
    if scopes is None and service is None and environment is None:
        return found, False
    if service is not None or environment is not None:
        rows = execute(con,
            "SELECT DISTINCT service, environment FROM deployments "
            "WHERE ($1 IS NULL OR service = $1) AND ($2 IS NULL OR environment = $2)",
            [service, environment],
        ).fetchall()
        found.update((str(s), str(e)) for s, e in rows)
    return found, True


def attribute_changes(
    db: Any,
    *,
    service: str | None = None,
    environment: str | None = None,
    deployment_ids: Iterable[str] | None = None,
    scopes: Iterable[Scope] | None = None,
    repositories: Iterable[str] = (),
) -> int:
    """Recompute ``deployment_changes`` for the affected (service, environment) scopes.

    ``db`` is a ``WriteSession`` (use it inside your run's ``open_writer``) or a DuckDB connection.
    Scope selection: ``deployment_ids`` -> the scopes of those deployments; ``scopes`` -> exactly
    those (service, environment) pairs; ``service``/``environment`` -> matching scopes; nothing
    -> every scope. ``repositories`` adds every scope with a deployment of one of them (new
    commits can complete those). Each selected scope is recomputed in full in the caller's
    transaction and its stored rows made equal to the result (only the difference is
    deleted/inserted), so calling it again is idempotent. Rows of deleted deployments are removed
    too. Returns the number of rows the selected scopes now hold.

    Each statement that reads the store is a catalog round trip on DuckLake, so the work is a
    fixed handful of them whatever the number of scopes, repositories and deployments: the
    scopes' deployments, their commit graphs, the revisions, the stored rows, then at most one
    DELETE and one INSERT of the difference. Everything else happens in TEMP tables.
    """
    return prepare_attribution(db, service=service, environment=environment,
                               deployment_ids=deployment_ids, scopes=scopes,
                               repositories=repositories).finish()


class PreparedAttribution:
    """Attribution with its reads that need no commit done (:func:`prepare_attribution`);
    :meth:`finish` runs the rest, from the commit graph on, in the same transaction."""

    def __init__(self, con: duckdb.DuckDBPyConnection, selected: list[Scope], any_stored: bool,
                 warnings_present: bool, loaded: LoadedNodes | None = None) -> None:
        self._con, self._selected = con, selected
        self._any_stored, self._warnings_present = any_stored, warnings_present
        self._loaded = loaded

    def finish(self) -> int:
        """The graph, the walks and the writes; returns the rows the selected scopes now hold.
        Nothing between :func:`prepare_attribution` and this may write deployments,
        deployment_revisions, deployment_changes, tags or attribution's data warnings."""
        return _finish(self._con, self._selected, self._any_stored, self._warnings_present,
                       self._loaded)


def prepare_attribution(
    db: Any,
    *,
    service: str | None = None,
    environment: str | None = None,
    deployment_ids: Iterable[str] | None = None,
    scopes: Iterable[Scope] | None = None,
    repositories: Iterable[str] = (),
    loaded: LoadedNodes | None = None,
    nothing_stored: bool = False,
) -> PreparedAttribution:
    """The first half of :func:`attribute_changes` (same arguments): the reads that need no
    commit (the deployments, the scopes, the shipped rows, the tags their revisions may name,
    the stored changes, the warnings' count). ``collect git`` runs it while git still walks, so
    that only the half that reads the commits is left for after git's exit, where nothing runs
    beside it (about 0.05 s of 0.3 at 100k commits). ``loaded``: a repository's first load
    numbering its commits and matching their parents as it goes
    (analytics/deployments/loaded_nodes.py), complete by the time :meth:`finish` runs.
    ``nothing_stored``: the caller's transaction began on a store without rows and wrote no
    deployment change, deployment revision or warning since (``collect git`` into a new store),
    so the reads of the stored changes, revisions and warnings (10-20 ms of catalog look-ups
    each on DuckLake) are left out."""
    con = _connection(db)
    given, narrowed = _scopes(con, service, environment, deployment_ids, scopes)
    ordered_scopes = sorted(given)
    execute(con, _ALL_DEPLOYMENTS)
    execute(con, _SCOPES, [[s for s, _ in ordered_scopes], [e for _, e in ordered_scopes],
                           sorted(set(repositories)), not narrowed])
    execute(con, _SHIPPED_NO_REVISIONS if nothing_stored else _SHIPPED)
    execute(con, _CANDIDATES)
    selected: list[Scope] = [(str(s), str(e)) for s, e in execute(con,
        "SELECT service, environment FROM _attr_scopes ORDER BY 1, 2").fetchall()]
    if nothing_stored:  # _attr_old is only read when something is stored
        return PreparedAttribution(con, selected, False, False, loaded)
    stored = execute(con, _STORED).fetchone()
    return PreparedAttribution(con, selected, bool(stored and stored[0]),
                               _warnings_present(con, selected), loaded)


def _finish(con: duckdb.DuckDBPyConnection, selected: list[Scope], any_stored: bool,
            warnings_present: bool, loaded: LoadedNodes | None = None) -> int:
    graph = _graph(con, loaded)
    for statement in (_RESOLVED, _STARTS, _WALKS, _DEPS):
        execute(con, statement)
    out: list[int] = []  # commit numbers in walk order, or spans of them (graph.spans)
    runs: list[tuple[int, int, int]] = []  # deployment number, first and last+1 position in out
    for _svc, _env, numbers, starts in execute(con, _WALK_INPUT).fetchall():
        visited = bytearray(graph.size)
        for number, start in zip(numbers, starts, strict=True):
            before = len(out)
            graph.walk(start, visited, out)
            runs.append((number, before, len(out)))
    walked = sum(out[1::2]) - sum(out[0::2]) if graph.spans else len(out)
    unresolved = {(str(svc), str(env)): (int(count), [str(n) for n in names])
                  for svc, env, count, names in execute(con, _UNRESOLVED).fetchall()}
    execute(con, "DROP TABLE _attr_shipped; DROP TABLE _attr_candidates; DROP TABLE _attr_resolved; "
                 "DROP TABLE _attr_starts; "
                 "DROP TABLE _attr_walks; DROP TABLE _attr_scopes")
    _apply(con, out, runs, any_stored, graph.spans)
    _warn_unresolved(con, selected, unresolved, warnings_present)
    return walked


def _pairs_csv(out: list[int], runs: list[tuple[int, int, int]], spans: bool = False) -> str:
    """The walk's (deployment number, commit number) pairs as a CSV file for DuckDB's reader:
    written at C speed by str.join, and parsed by DuckDB faster than it converts Python lists.
    ``spans``: ``out`` holds spans, written as (deployment number, first, last + 1) lines."""
    parts = []
    for number, lo, hi in runs:
        if hi > lo:
            prefix = f"{number},"
            if spans:
                parts.append(prefix + ("\n" + prefix).join(
                    f"{first},{end}" for first, end in zip(out[lo:hi:2], out[lo + 1:hi:2], strict=True)))
            else:
                parts.append(prefix + ("\n" + prefix).join(map(str, out[lo:hi])))
    fd, path = tempfile.mkstemp(prefix="gitops-dora-attr-", suffix=".csv")
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(parts) + "\n")
    return path


def _apply(con: duckdb.DuckDBPyConnection, out: list[int], runs: list[tuple[int, int, int]],
           any_stored: bool, spans: bool = False) -> None:
    """Make the scopes' rows equal the walk's result by deleting and inserting only the
    difference, and drop rows of deployments that no longer exist (read into ``_attr_old``).

    The difference is computed on integers (deployment and commit numbers) in TEMP tables, so a
    recomputation that changes nothing writes nothing, and a re-run after one new commit touches
    one row instead of rewriting the whole scope. With nothing stored yet it is one INSERT.
    """
    path = _pairs_csv(out, runs, spans) if out else None
    try:
        if path is None:
            source = "(SELECT NULL::INTEGER AS dk, NULL::INTEGER AS i WHERE false)"
        elif spans:
            source = (f"(SELECT dk, CAST(unnest(range(lo, hi)) AS INTEGER) AS i FROM read_csv("
                      f"{sql_string(path)}, header = false, auto_detect = false, delim = ',', "
                      "columns = {'dk': 'INTEGER', 'lo': 'INTEGER', 'hi': 'INTEGER'}))")
        else:
            source = (f"(SELECT dk, i FROM read_csv({sql_string(path)}, header = false, "
                      "auto_detect = false, delim = ',', columns = {'dk': 'INTEGER', 'i': 'INTEGER'}))")
        if any_stored:
            # A stored row whose commit times are not its commit's (NULL: written before the
            # commit was collected or by a writer that left them out; different: the commit was
            # written again, e.g. a webhook's push then git) is deleted and inserted again with them.
            execute(con, f"CREATE OR REPLACE TEMP TABLE _attr_new AS SELECT * FROM {source}")
            execute(con,
                """CREATE OR REPLACE TEMP TABLE _attr_old_i AS
                   SELECT o.deployment_id, o.repo, o.sha, d.dk, n.i,
                          o.author_time IS NOT DISTINCT FROM n.author_time
                          AND o.committer_time IS NOT DISTINCT FROM n.committer_time AS times_current
                   FROM _attr_old o
                   LEFT JOIN _attr_deps d ON d.id = o.deployment_id
                   LEFT JOIN _attr_nodes n ON n.repo = o.repo AND n.sha = o.sha"""
            )
            gone = execute(con,
                """CREATE OR REPLACE TEMP TABLE _attr_gone AS
                   SELECT deployment_id, repo, sha FROM _attr_old_i o
                   WHERE o.dk IS NULL OR o.i IS NULL OR NOT o.times_current
                      OR NOT EXISTS (SELECT 1 FROM _attr_new n WHERE n.dk = o.dk AND n.i = o.i)"""
            ).fetchone()
            if gone and gone[0]:
                execute(con,
                    """DELETE FROM deployment_changes dc WHERE EXISTS (
                           SELECT 1 FROM _attr_gone g WHERE g.deployment_id = dc.deployment_id
                           AND g.repo = dc.repo AND g.sha = dc.sha)"""
                )
            source = ("(SELECT dk, i FROM _attr_new n WHERE NOT EXISTS "
                      "(SELECT 1 FROM _attr_old_i o WHERE o.dk = n.dk AND o.i = n.i AND o.times_current))")
        if out:
            execute(con,
                f"""INSERT INTO deployment_changes (deployment_id, repo, sha, author_time, committer_time)
                    SELECT d.id, n.repo, n.sha, n.author_time, n.committer_time FROM {source} a
                    JOIN _attr_deps d ON d.dk = a.dk JOIN _attr_nodes n ON n.i = a.i"""
            )
    finally:
        if path:
            os.unlink(path)
    execute(con, "DROP TABLE IF EXISTS _attr_new; DROP TABLE IF EXISTS _attr_old_i; "
                "DROP TABLE IF EXISTS _attr_gone; DROP TABLE IF EXISTS _attr_old; DROP TABLE _attr_deps; "
                "DROP TABLE _attr_nodes; DROP TABLE _attr_all_deps")


def _warnings_present(con: duckdb.DuckDBPyConnection, scopes: list[Scope]) -> bool:
    """Whether attribution's warnings of these scopes are stored (read by prepare_attribution).

    Counted first, and only deleted when there is something to delete: a DELETE (or a WHERE
    the scan is given) makes DuckLake look up the file statistics of each filtered column, about
    6 ms of catalog reads each on SQLite; an aggregate's FILTER is not pushed into the scan, so
    the count reads the table once (about 7 ms against the DELETE's 22 ms on a new store)."""
    if not scopes:
        return False
    present = execute(con,
        "SELECT count(*) FILTER (WHERE source = 'attribution' AND kind = 'unresolved_revision' "
        "AND target IN (SELECT unnest($1::VARCHAR[]))) FROM data_warnings",
        [[f"{svc}/{env}" for svc, env in scopes]],
    ).fetchone()
    return bool(present and present[0])


def _warn_unresolved(
    con: duckdb.DuckDBPyConnection, scopes: list[Scope], unresolved: dict[Scope, tuple[int, list[str]]],
    present: bool,
) -> None:
    """One current warning per scope for the Data health page; attribution carries on without them.
    ``unresolved``: per scope, how many deployments could not be attributed and the first three;
    ``present``: whether some of the scopes' warnings are stored (:func:`_warnings_present`)."""
    if not scopes:
        return
    targets = [f"{svc}/{env}" for svc, env in scopes]
    if present:
        execute(con,
            "DELETE FROM data_warnings WHERE source = 'attribution' AND kind = 'unresolved_revision' "
            "AND target IN (SELECT unnest($1::VARCHAR[]))", [targets],
        )
    rows = [(target, failed) for target, scope in zip(targets, scopes, strict=True)
            if (failed := unresolved.get(scope))]
    if not rows:
        return
    execute(con,
        """INSERT INTO data_warnings
           SELECT 'attribution', unnest($1::VARCHAR[]), 'unresolved_revision', unnest($2::VARCHAR[]),
                  unnest($3::BIGINT[]), now()""",
        [[t for t, _ in rows],
         [f"deployments whose revision is not a collected commit: "
          f"{', '.join(names[:3]) + (' ...' if count > 3 else '')}" for _, (count, names) in rows],
         [count for _, (count, _) in rows]],
    )
