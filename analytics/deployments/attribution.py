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

import bisect
import os
import re
import tempfile
from collections.abc import Iterable
from typing import Any

import duckdb

from analytics.store.literals import MAX_INLINE_ITEMS, execute, sql_string

_HEX = re.compile(r"^[0-9a-f]{4,40}$")
Scope = tuple[str, str]
Row = tuple[str, str | None, str | None, str | None, int]  # id, repository, revision, raw, µs
# (deployed_at in µs, tie-break µs, deployment id, start commit number)
_Start = tuple[int, int, str, int]


class _Graph:
    """The commits of every repository involved, numbered 0..n-1 in the TEMP table ``_attr_nodes``.

    Parents are matched within a repository, so walks never cross repositories and one numbering
    serves them all. Each commit's first parent comes back as one list aligned with the numbers
    (no Python loop builds the graph); only the further parents of merge commits go into a dict,
    and the walk follows first-parent chains without pushing them on a stack.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, repos: list[str]) -> None:
        self.con = con
        self.first: list[int] = []
        self.extra: dict[int, list[int]] = {}
        self._shas: dict[str, list[tuple[str, int]]] = {}
        if not repos:
            execute(con, "CREATE OR REPLACE TEMP TABLE _attr_nodes (repo VARCHAR, i INTEGER, sha VARCHAR, "
                        "first_parent VARCHAR, more_parents VARCHAR[])")
            return
        execute(con,
            """CREATE OR REPLACE TEMP TABLE _attr_nodes AS
               SELECT repo, CAST(row_number() OVER () - 1 AS INTEGER) AS i, sha, parents[1] AS first_parent,
                      CASE WHEN len(parents) > 1 THEN parents[2:] END AS more_parents
               FROM commits WHERE repo IN (SELECT unnest($1::VARCHAR[]))""",
            [repos],
        )
        first = execute(con,
            """SELECT list(coalesce(p.i, -1) ORDER BY c.i) FROM _attr_nodes c
               LEFT JOIN _attr_nodes p ON p.repo = c.repo AND p.sha = c.first_parent"""
        ).fetchone()
        merges = execute(con,
            """SELECT list(c.i ORDER BY c.i, c.pos), list(p.i ORDER BY c.i, c.pos)
               FROM (SELECT repo, i, unnest(more_parents) AS psha, generate_subscripts(more_parents, 1) AS pos
                     FROM _attr_nodes WHERE more_parents IS NOT NULL) c
               JOIN _attr_nodes p ON p.repo = c.repo AND p.sha = c.psha"""
        ).fetchone()
        self.first = list(first[0] or []) if first else []
        children, parents = merges if merges else (None, None)
        for child, parent in zip(children or [], parents or [], strict=True):
            self.extra.setdefault(child, []).append(parent)

    @property
    def size(self) -> int:
        return len(self.first)

    def walk(self, start: int, visited: bytearray, out: list[int]) -> None:
        """Append to ``out`` every commit reachable from ``start`` that is not visited yet."""
        first, extra = self.first, self.extra
        stack = [start]
        while stack:
            current = stack.pop()
            while current >= 0 and not visited[current]:
                visited[current] = 1
                out.append(current)
                more = extra.get(current)
                if more is not None:
                    stack.extend(more)
                current = first[current]

    def prefix(self, repo: str, prefix: str) -> int | None:
        """The commit a unique abbreviated sha names (fetched lazily: abbreviations are rare)."""
        shas = self._shas.get(repo)
        if shas is None:
            shas = self._shas[repo] = [(str(sha), int(i)) for sha, i in execute(self.con,
                "SELECT sha, i FROM _attr_nodes WHERE repo = $1 ORDER BY sha", [repo]).fetchall()]
        at = bisect.bisect_left(shas, (prefix, -1))
        hits = [shas[j][1] for j in range(at, min(at + 2, len(shas))) if shas[j][0].startswith(prefix)]
        return hits[0] if len(hits) == 1 else None

    def committed_us(self, numbers: list[int]) -> dict[int, int]:
        """Committer times for the tie-break of equal deployment times (rare, so read when needed)."""
        rows = execute(self.con,
            """SELECT n.i, epoch_us(c.committer_time) FROM _attr_nodes n
               JOIN commits c ON c.repo = n.repo AND c.sha = n.sha
               WHERE n.i IN (SELECT unnest($1::INTEGER[]))""",
            [numbers]).fetchall()
        return {int(i): int(us) for i, us in rows}


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


# The selected scopes and their successful deployments in one read. A deployment shipping several
# repositories has a pair per repository in deployment_revisions (its deployments row holds the
# first pair again: UNION drops it). Scope rows have a NULL id. Each row counts the rows of its
# scope with its (repository, revision, raw revision), and is numbered among them by time then id.
_DEPLOYMENTS = """
CREATE OR REPLACE TEMP TABLE _attr_shipped AS
WITH given AS (SELECT unnest($1::VARCHAR[]) AS service, unnest($2::VARCHAR[]) AS environment),
scope AS (
    SELECT service, environment FROM given
    UNION SELECT service, environment FROM _attr_all_deps
          WHERE $4 OR repository IN (SELECT unnest($3::VARCHAR[]))
),
succeeded AS MATERIALIZED (
    SELECT d.service, d.environment, d.id, d.repository, d.revision, d.raw_revision,
           epoch_us(d.deployed_at) AS us
    FROM _attr_all_deps d JOIN scope s ON s.service = d.service AND s.environment = d.environment
    WHERE d.status = 'success'
),
shipped AS (
    SELECT * FROM succeeded
    UNION
    SELECT d.service, d.environment, d.id, r.repository, r.revision, r.raw_revision, d.us
    FROM deployment_revisions r JOIN succeeded d ON d.id = r.deployment_id
)
SELECT service, environment, NULL::VARCHAR AS id, NULL::VARCHAR AS repository, NULL::VARCHAR AS revision,
       NULL::VARCHAR AS raw_revision, NULL::BIGINT AS us, NULL::BIGINT AS members, NULL::BIGINT AS nth
FROM scope
UNION ALL
SELECT *, count(*) OVER (PARTITION BY service, environment, repository, revision, raw_revision),
       row_number() OVER (PARTITION BY service, environment, repository, revision, raw_revision
                          ORDER BY us, id)
FROM shipped
"""

# What the walk needs: the scopes, and of the deployments with one (repository, revision, raw
# revision) in a scope only the first by (time, id). The others would start where it started,
# which it visited, and ship nothing: a scope redeploying one revision a thousand times walks
# once. A deployment without a repository is kept (it is named in the warning); so are, later,
# the others of an unresolved revision (_members), for the same reason.
_WALKED = """
SELECT service, environment, id, repository, revision, raw_revision, us, members FROM _attr_shipped
WHERE id IS NULL OR repository IS NULL OR nth = 1
ORDER BY 1, 2, 3 NULLS FIRST, 4, 5, 6
"""

_MEMBERS = """
SELECT s.service, s.environment, s.repository, s.id, s.revision, s.raw_revision FROM _attr_shipped s
JOIN (SELECT unnest($1::VARCHAR[]) AS service, unnest($2::VARCHAR[]) AS environment,
             unnest($3::VARCHAR[]) AS repository, unnest($4::VARCHAR[]) AS revision,
             unnest($5::VARCHAR[]) AS raw_revision) g
  ON s.service = g.service AND s.environment = g.environment AND s.repository = g.repository
 AND s.revision IS NOT DISTINCT FROM g.revision AND s.raw_revision IS NOT DISTINCT FROM g.raw_revision
WHERE s.id IS NOT NULL
"""

# Resolution order: exact sha, tag name, trimmed lower-case sha (a unique prefix comes later).
# The candidates are few, so they are the join's build side and the commits are scanned once.
_RESOLVE = """
WITH r AS (SELECT repo, rev, k FROM _attr_asked),
candidate AS (
    SELECT k, repo, rev AS sha, 1 AS rank FROM r
    UNION ALL
    SELECT r.k, r.repo, tg.sha, 2 FROM r JOIN tags tg ON tg.repo = r.repo AND tg.name = r.rev
    UNION ALL
    SELECT k, repo, lower(trim(rev)), 3 FROM r
)
SELECT c.k, arg_min(n.i, c.rank)
FROM candidate c JOIN _attr_nodes n ON n.repo = c.repo AND n.sha = c.sha
GROUP BY c.k
"""

# The stored rows of the selected scopes, and every row whose deployment is gone. NOT IN
# semantics of the old orphan rule: a deployment without an id keeps every orphan row.
_STORED = """
CREATE OR REPLACE TEMP TABLE _attr_old AS
SELECT dc.deployment_id, dc.repo, dc.sha
FROM deployment_changes dc LEFT JOIN _attr_all_deps d ON d.id = dc.deployment_id
WHERE EXISTS (SELECT 1 FROM (SELECT unnest($1::VARCHAR[]) AS service,
                                    unnest($2::VARCHAR[]) AS environment) s
              WHERE s.service = d.service AND s.environment = d.environment)
   OR d.id IS NULL AND NOT EXISTS (SELECT 1 FROM _attr_all_deps WHERE id IS NULL)
"""

# The deployments both reads above need, copied once: on DuckLake every reference to a store
# table costs a catalog look-up (about 10 ms of CPU on a SQLite catalog), and they named it four
# times.
_ALL_DEPLOYMENTS = """
CREATE OR REPLACE TEMP TABLE _attr_all_deps AS
SELECT id, service, environment, repository, revision, raw_revision, deployed_at, status FROM deployments
"""


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
    con = _connection(db)
    given, narrowed = _scopes(con, service, environment, deployment_ids, scopes)
    ordered_scopes = sorted(given)
    con.execute(_ALL_DEPLOYMENTS)
    execute(con, _DEPLOYMENTS, [[s for s, _ in ordered_scopes], [e for _, e in ordered_scopes],
                               sorted(set(repositories)), not narrowed])
    result = con.execute(_WALKED)
    selected: list[Scope] = []
    by_scope: dict[Scope, list[Row]] = {}
    shared: set[tuple[Scope, str, str | None, str | None]] = set()  # revisions of several deployments
    # read in batches: a million deployments held twice (as fetched and as grouped) cost ~300 MB
    while rows := result.fetchmany(50_000):
        for svc, env, dep_id, repo, revision, raw, when, members in rows:
            scope = (str(svc), str(env))
            if dep_id is None:
                selected.append(scope)
            else:
                by_scope.setdefault(scope, []).append((dep_id, repo, revision, raw, int(when)))
                if members > 1 and repo is not None:
                    shared.add((scope, repo, revision, raw))
    stored = execute(con, _STORED, [[s for s, _ in selected], [e for _, e in selected]]).fetchone()
    graph = _Graph(con, sorted({r[1] for deps in by_scope.values() for r in deps if r[1] is not None}))
    starts, unresolved = _resolve(con, graph, selected, by_scope, shared)
    execute(con, "DROP TABLE _attr_shipped")
    dep_ids: list[str] = []
    dep_number: dict[str, int] = {}
    out: list[int] = []
    runs: list[tuple[int, int, int]] = []  # deployment number, first and last+1 position in out
    for scope in selected:
        visited = bytearray(graph.size)
        for _when, _tie, dep_id, start in _with_tie_break(graph, starts.get(scope, [])):
            number = dep_number.setdefault(dep_id, len(dep_number))
            if number == len(dep_ids):
                dep_ids.append(dep_id)
            before = len(out)
            graph.walk(start, visited, out)
            runs.append((number, before, len(out)))
    _apply(con, selected, dep_ids, out, runs, bool(stored and stored[0]))
    _warn_unresolved(con, selected, unresolved)
    return len(out)


def _resolve(
    con: duckdb.DuckDBPyConnection, graph: _Graph, selected: list[Scope], by_scope: dict[Scope, list[Row]],
    shared: set[tuple[Scope, str, str | None, str | None]],
) -> tuple[dict[Scope, list[_Start]], dict[Scope, list[str]]]:
    """Each deployment's start commit per scope, resolved in one statement: its revision, else its
    raw revision, as a full sha, a tag name, or a unique abbreviated sha. ``shared``: the
    (scope, repository, revision, raw) of by_scope's deployments that stand for several; when
    such a revision does not resolve, every deployment of it is named (as each would be)."""
    wanted: list[tuple[Scope, str, str, str | None, str | None, int]] = []
    unresolved: dict[Scope, list[str]] = {scope: [] for scope in selected}
    for scope in selected:
        deps = by_scope.get(scope, [])
        unresolved[scope] += [f"{dep_id} (no repository)" for dep_id, repo, *_ in deps if repo is None]
        for dep_id, repo, revision, raw, when in sorted(deps, key=lambda d: str(d[1])):
            if repo is not None:
                wanted.append((scope, repo, dep_id, revision, raw, when))
    if not wanted:
        return {}, unresolved
    # Each distinct (repository, revision) once: deployments of one revision are many.
    asked: dict[tuple[str, str | None], int] = {}
    for _, repo, _, revision, raw, _ in wanted:
        asked.setdefault((repo, revision), len(asked))
        asked.setdefault((repo, raw), len(asked))
    found: list[int | None] = [None] * len(asked)
    _temp_table(con, "_attr_asked", {"repo": [repo for repo, _ in asked], "rev": [rev for _, rev in asked]},
                "k")
    for k, i in execute(con, _RESOLVE).fetchall():
        found[k] = i
    execute(con, "DROP TABLE _attr_asked")
    numbers: dict[tuple[str, str | None], int | None] = {}
    starts: dict[Scope, list[_Start]] = {}
    failed: list[tuple[Scope, str, str, str | None, str | None]] = []
    for scope, repo, dep_id, revision, raw, when in wanted:
        number = _cached_prefix(graph, numbers, asked, found, repo, revision)
        if number is None:
            number = _cached_prefix(graph, numbers, asked, found, repo, raw)
        if number is None:
            failed.append((scope, repo, dep_id, revision, raw))
        else:
            starts.setdefault(scope, []).append((when, 0, dep_id, number))
    groups = [f for f in failed if (f[0], f[1], f[3], f[4]) in shared]
    if groups:
        failed = [f for f in failed if (f[0], f[1], f[3], f[4]) not in shared]
        members = execute(con, _MEMBERS, [[f[0][0] for f in groups], [f[0][1] for f in groups],
                                          [f[1] for f in groups], [f[3] for f in groups],
                                          [f[4] for f in groups]]).fetchall()
        failed += [((str(svc), str(env)), repo, dep_id, revision, raw)
                   for svc, env, repo, dep_id, revision, raw in members]
        # in the order the walk's input had: by repository, then id, revision, raw (nulls last)
        failed.sort(key=lambda f: (f[0], f[1], f[2], f[3] is None, f[3] or "", f[4] is None, f[4] or ""))
    for scope, repo, dep_id, revision, _ in failed:
        unresolved[scope].append(f"{dep_id} ({repo}@{revision})")
    return starts, unresolved


def _temp_table(con: duckdb.DuckDBPyConnection, name: str, columns: dict[str, list[Any]],
                number: str) -> None:
    """A TEMP table of VARCHAR ``columns`` numbered 0..n-1 in ``number`` (INTEGER). A few thousand
    values go in as literal lists: ``collect git`` never imports pandas for them (about 0.4 s of
    CPU, tests/test_git_speed_literals.py). More go through a registered DataFrame: DuckDB converts
    a Python list parameter of 200,000 strings in seconds, a DataFrame's columns several times
    faster, and binding either imports pandas anyway."""
    rows = len(next(iter(columns.values()), []))
    if rows * (len(columns) + 1) <= MAX_INLINE_ITEMS:
        names = list(columns)
        cols = ", ".join(f'unnest(${i}::VARCHAR[]) AS "{key}"' for i, key in enumerate(names, start=1))
        execute(con, f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT {cols}, "
                     f"unnest(${len(names) + 1}::INTEGER[]) AS {number}",
                [list(columns[key]) for key in names] + [list(range(rows))])
        return
    import pandas as pd

    frame = pd.DataFrame({key: pd.Series(values, dtype=object) for key, values in columns.items()})
    frame[number] = range(len(frame))
    view = f"{name}_frame"
    con.register(view, frame)
    try:
        cols = ", ".join(f'CAST("{key}" AS VARCHAR) AS "{key}"' for key in columns)
        execute(con, f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT {cols}, "
                     f"CAST({number} AS INTEGER) AS {number} FROM {view}")
    finally:
        con.unregister(view)


def _cached_prefix(graph: _Graph, numbers: dict[tuple[str, str | None], int | None],
                   asked: dict[tuple[str, str | None], int], found: list[int | None], repo: str,
                   rev: str | None) -> int | None:
    """:func:`_or_prefix` of (repo, rev), computed once per distinct pair."""
    key = (repo, rev)
    if key not in numbers:
        numbers[key] = _or_prefix(graph, repo, found[asked[key]], rev)
    return numbers[key]


def _or_prefix(graph: _Graph, repo: str, number: int | None, rev: str | None) -> int | None:
    if number is None and rev and _HEX.match(rev.strip().lower()):
        return graph.prefix(repo, rev.strip().lower())
    return number


def _pairs_csv(out: list[int], runs: list[tuple[int, int, int]]) -> str:
    """The walk's (deployment number, commit number) pairs as a CSV file for DuckDB's reader:
    written at C speed by str.join, and parsed by DuckDB faster than it converts Python lists."""
    parts = []
    for number, lo, hi in runs:
        if hi > lo:
            prefix = f"{number},"
            parts.append(prefix + ("\n" + prefix).join(map(str, out[lo:hi])))
    fd, path = tempfile.mkstemp(prefix="gitops-dora-attr-", suffix=".csv")
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(parts) + "\n")
    return path


def _apply(
    con: duckdb.DuckDBPyConnection, scopes: list[Scope], dep_ids: list[str], out: list[int],
    runs: list[tuple[int, int, int]], any_stored: bool,
) -> None:
    """Make the scopes' rows equal the walk's result by deleting and inserting only the
    difference, and drop rows of deployments that no longer exist (read into ``_attr_old``).

    The difference is computed on integers (deployment and commit numbers) in TEMP tables, so a
    recomputation that changes nothing writes nothing, and a re-run after one new commit touches
    one row instead of rewriting the whole scope. With nothing stored yet it is one INSERT.
    """
    _temp_table(con, "_attr_deps", {"id": dep_ids}, "dk")
    path = _pairs_csv(out, runs) if out else None
    try:
        source = (f"(SELECT dk, i FROM read_csv({sql_string(path)}, header = false, "
                  "auto_detect = false, delim = ',', columns = {'dk': 'INTEGER', 'i': 'INTEGER'}))"
                  if path else "(SELECT NULL::INTEGER AS dk, NULL::INTEGER AS i WHERE false)")
        if any_stored:
            execute(con, f"CREATE OR REPLACE TEMP TABLE _attr_new AS SELECT * FROM {source}")
            execute(con,
                """CREATE OR REPLACE TEMP TABLE _attr_old_i AS
                   SELECT o.deployment_id, o.repo, o.sha, d.dk, n.i FROM _attr_old o
                   LEFT JOIN _attr_deps d ON d.id = o.deployment_id
                   LEFT JOIN _attr_nodes n ON n.repo = o.repo AND n.sha = o.sha"""
            )
            gone = execute(con,
                """CREATE OR REPLACE TEMP TABLE _attr_gone AS
                   SELECT deployment_id, repo, sha FROM _attr_old_i o
                   WHERE o.dk IS NULL OR o.i IS NULL
                      OR NOT EXISTS (SELECT 1 FROM _attr_new n WHERE n.dk = o.dk AND n.i = o.i)"""
            ).fetchone()
            if gone and gone[0]:
                execute(con,
                    """DELETE FROM deployment_changes dc WHERE EXISTS (
                           SELECT 1 FROM _attr_gone g WHERE g.deployment_id = dc.deployment_id
                           AND g.repo = dc.repo AND g.sha = dc.sha)"""
                )
            source = ("(SELECT dk, i FROM _attr_new n WHERE NOT EXISTS "
                      "(SELECT 1 FROM _attr_old_i o WHERE o.dk = n.dk AND o.i = n.i))")
        if out:
            execute(con,
                f"""INSERT INTO deployment_changes (deployment_id, repo, sha)
                    SELECT d.id, n.repo, n.sha FROM {source} a
                    JOIN _attr_deps d ON d.dk = a.dk JOIN _attr_nodes n ON n.i = a.i"""
            )
    finally:
        if path:
            os.unlink(path)
    execute(con, "DROP TABLE IF EXISTS _attr_new; DROP TABLE IF EXISTS _attr_old_i; "
                "DROP TABLE IF EXISTS _attr_gone; DROP TABLE _attr_old; DROP TABLE _attr_deps; "
                "DROP TABLE _attr_nodes; DROP TABLE _attr_all_deps")


def _with_tie_break(graph: _Graph, ordered: list[_Start]) -> list[_Start]:
    """Sort by time; equal times by the revision's committer time, then deployment id."""
    times = [t for t, *_ in ordered]
    if len(set(times)) == len(times):
        return sorted(ordered, key=lambda d: (d[0], d[2]))
    committed = graph.committed_us(sorted({number for *_, number in ordered}))
    return sorted(((when, committed.get(number, 0), dep_id, number) for when, _, dep_id, number in ordered),
                  key=lambda d: (d[0], d[1], d[2]))


def _warn_unresolved(
    con: duckdb.DuckDBPyConnection, scopes: list[Scope], unresolved: dict[Scope, list[str]],
) -> None:
    """One current warning per scope for the Data health page; attribution carries on without them."""
    if not scopes:
        return
    targets = [f"{svc}/{env}" for svc, env in scopes]
    execute(con,
        "DELETE FROM data_warnings WHERE source = 'attribution' AND kind = 'unresolved_revision' "
        "AND target IN (SELECT unnest($1::VARCHAR[]))", [targets],
    )
    rows = [(target, names) for target, scope in zip(targets, scopes, strict=True)
            if (names := unresolved.get(scope))]
    if not rows:
        return
    execute(con,
        """INSERT INTO data_warnings
           SELECT 'attribution', unnest($1::VARCHAR[]), 'unresolved_revision', unnest($2::VARCHAR[]),
                  unnest($3::BIGINT[]), now()""",
        [[t for t, _ in rows],
         [f"deployments whose revision is not a collected commit: "
          f"{', '.join(names[:3]) + (' ...' if len(names) > 3 else '')}" for _, names in rows],
         [len(names) for _, names in rows]],
    )
