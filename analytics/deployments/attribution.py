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
import re
from collections.abc import Iterable
from typing import Any

import duckdb

_HEX = re.compile(r"^[0-9a-f]{4,40}$")
Scope = tuple[str, str]


class _RepoGraph:
    """One repository's commit graph as integers, so the walk and the load stay cheap.

    Commits are numbered in a TEMP table; parents become lists of numbers, and the
    result goes back to DuckDB as numbers joined to that table (no sha strings cross into Python
    except for the rare abbreviated revision).
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, repo: str, n: int) -> None:
        self.con, self.repo = con, repo
        self.table = f"_attr_nodes_{n}"
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {self.table} AS "
            "SELECT CAST(row_number() OVER () - 1 AS INTEGER) AS i, sha, parents "
            "FROM commits WHERE repo = ?", [repo],
        )
        row = con.execute(f"SELECT count(*) FROM {self.table}").fetchall()[0]
        self.size = int(row[0]) if row else 0
        parents: list[list[int]] = [[] for _ in range(self.size)]
        for child, parent in con.execute(
            f"SELECT c.i, p.i FROM (SELECT i, unnest(parents) AS psha FROM {self.table}) c "
            f"JOIN {self.table} p ON p.sha = c.psha"
        ).fetchall():
            parents[child].append(parent)
        self.parents = parents
        self._shas: list[tuple[str, int]] | None = None
        self.out_deployment: list[int] = []
        self.out_commit: list[int] = []

    def resolve(self, revisions: list[str | None]) -> list[int | None]:
        """Commit numbers for revisions: exact sha, tag name, lower-case sha, unique sha prefix."""
        rows = self.con.execute(
            f"""SELECT r.k, coalesce(e.i, t.i, l.i)
                FROM (SELECT unnest($1::VARCHAR[]) AS rev,
                             generate_subscripts($1::VARCHAR[], 1) - 1 AS k) r
                LEFT JOIN {self.table} e ON e.sha = r.rev
                LEFT JOIN (SELECT tg.name, n.i FROM tags tg JOIN {self.table} n ON n.sha = tg.sha
                           WHERE tg.repo = $2) t ON t.name = r.rev
                LEFT JOIN {self.table} l ON l.sha = lower(trim(r.rev))""",
            [revisions, self.repo],
        ).fetchall()
        found: list[int | None] = [None] * len(revisions)
        for k, i in rows:
            found[k] = i
        for k, rev in enumerate(revisions):
            if found[k] is None and rev and _HEX.match(rev.strip().lower()):
                found[k] = self._prefix(rev.strip().lower())
        return found

    def _prefix(self, prefix: str) -> int | None:
        if self._shas is None:  # only for abbreviated revisions, so fetched lazily
            self._shas = [(str(sha), int(i)) for sha, i in self.con.execute(
                f"SELECT sha, i FROM {self.table} ORDER BY sha").fetchall()]
        at = bisect.bisect_left(self._shas, (prefix, -1))
        hits = [self._shas[j][1] for j in range(at, min(at + 2, len(self._shas)))
                if self._shas[j][0].startswith(prefix)]
        return hits[0] if len(hits) == 1 else None

    def committed_us(self, numbers: list[int]) -> dict[int, int]:
        rows = self.con.execute(
            f"""SELECT n.i, epoch_us(c.committer_time) FROM {self.table} n
                JOIN commits c ON c.repo = $2 AND c.sha = n.sha WHERE list_contains($1, n.i)""",
            [numbers, self.repo],
        ).fetchall()
        return {int(i): int(us) for i, us in rows}

    def flush(self, deployment_ids: list[str]) -> int:
        """Add the collected (deployment, commit) pairs to ``_attr_new`` and drop the TEMP table."""
        if self.out_commit:
            self.con.execute(
                f"""INSERT INTO _attr_new (deployment_id, repo, sha)
                    SELECT d.id, $4, n.sha
                    FROM (SELECT unnest($1::INTEGER[]) AS dk, unnest($2::INTEGER[]) AS ci) x
                    JOIN {self.table} n ON n.i = x.ci
                    JOIN (SELECT unnest($3::VARCHAR[]) AS id,
                                 generate_subscripts($3::VARCHAR[], 1) - 1 AS dk) d USING (dk)""",
                [self.out_deployment, self.out_commit, deployment_ids, self.repo],
            )
        self.con.execute(f"DROP TABLE IF EXISTS {self.table}")
        return len(self.out_commit)


def _connection(db: Any) -> duckdb.DuckDBPyConnection:
    con = getattr(db, "con", db)
    if not isinstance(con, duckdb.DuckDBPyConnection):
        raise TypeError("attribute_changes needs a WriteSession or a DuckDB connection")
    return con


def _scopes(
    con: duckdb.DuckDBPyConnection, service: str | None, environment: str | None,
    deployment_ids: Iterable[str] | None, scopes: Iterable[Scope] | None,
) -> set[Scope]:
    found: set[Scope] = set(scopes or ())
    if deployment_ids is not None:
        ids = list(deployment_ids)
        if ids:
            rows = con.execute(
                "SELECT DISTINCT service, environment FROM deployments "
                "WHERE id IN (SELECT unnest($1::VARCHAR[]))", [ids]
            ).fetchall()
            found.update((str(s), str(e)) for s, e in rows)
    elif scopes is None or service is not None or environment is not None:
        rows = con.execute(
            "SELECT DISTINCT service, environment FROM deployments "
            "WHERE ($1 IS NULL OR service = $1) AND ($2 IS NULL OR environment = $2)",
            [service, environment],
        ).fetchall()
        found.update((str(s), str(e)) for s, e in rows)
    return found


def attribute_changes(
    db: Any,
    *,
    service: str | None = None,
    environment: str | None = None,
    deployment_ids: Iterable[str] | None = None,
    scopes: Iterable[Scope] | None = None,
) -> int:
    """Recompute ``deployment_changes`` for the affected (service, environment) scopes.

    ``db`` is a ``WriteSession`` (use it inside your run's ``open_writer``) or a DuckDB connection.
    Scope selection: ``deployment_ids`` -> the scopes of those deployments; ``scopes`` -> exactly
    those (service, environment) pairs; ``service``/``environment`` -> matching scopes; nothing
    -> every scope. Each selected scope is recomputed in full in the caller's transaction and its
    stored rows made equal to the result (only the difference is deleted/inserted), so calling
    it again is idempotent. Rows of deleted deployments are removed too.
    Returns the number of rows the selected scopes now hold.
    """
    con = _connection(db)
    selected = _scopes(con, service, environment, deployment_ids, scopes)
    con.execute("DELETE FROM deployment_changes WHERE deployment_id NOT IN (SELECT id FROM deployments)")
    if not selected:
        return 0
    graphs: dict[str, _RepoGraph] = {}
    dep_names: list[str] = []
    for svc, env in sorted(selected):
        # a deployment shipping several repositories has a pair per repository in
        # deployment_revisions (its deployments row holds the first pair again: UNION drops it)
        rows = con.execute(
            """SELECT id, repository, revision, raw_revision, epoch_us(deployed_at)
               FROM deployments WHERE service = $1 AND environment = $2 AND status = 'success'
               UNION
               SELECT d.id, r.repository, r.revision, r.raw_revision, epoch_us(d.deployed_at)
               FROM deployment_revisions r JOIN deployments d ON d.id = r.deployment_id
               WHERE d.service = $1 AND d.environment = $2 AND d.status = 'success'
               ORDER BY 1, 2""",
            [svc, env],
        ).fetchall()
        unresolved = [f"{dep_id} (no repository)" for dep_id, repo, *_ in rows if repo is None]
        by_repo: dict[str, list[tuple[str, str | None, str | None, int]]] = {}
        for dep_id, repo, revision, raw, when in rows:
            if repo is not None:
                by_repo.setdefault(repo, []).append((dep_id, revision, raw, int(when)))
        ordered: list[tuple[int, int, str, _RepoGraph, int]] = []
        for repo, deps in sorted(by_repo.items()):
            graph = graphs.get(repo)
            if graph is None:
                graph = graphs[repo] = _RepoGraph(con, repo, len(graphs))
            numbers = graph.resolve([d[1] for d in deps] + [d[2] for d in deps])
            for k, (dep_id, revision, _raw, when) in enumerate(deps):
                number = numbers[k] if numbers[k] is not None else numbers[len(deps) + k]
                if number is None:
                    unresolved.append(f"{dep_id} ({repo}@{revision})")
                else:
                    ordered.append((when, 0, dep_id, graph, number))
        seen: dict[str, bytearray] = {}
        for _when, _tie, dep_id, graph, start in _with_tie_break(ordered):
            visited = seen.get(graph.repo)
            if visited is None:
                visited = seen[graph.repo] = bytearray(graph.size)
            dk = len(dep_names)
            dep_names.append(dep_id)
            parents, out_dep, out_commit = graph.parents, graph.out_deployment, graph.out_commit
            stack = [start]
            while stack:
                current = stack.pop()
                if visited[current]:
                    continue
                visited[current] = 1
                out_dep.append(dk)
                out_commit.append(current)
                stack.extend(parents[current])
        _warn_unresolved(con, f"{svc}/{env}", unresolved)
    con.execute("CREATE OR REPLACE TEMP TABLE _attr_new "
                "(deployment_id VARCHAR, repo VARCHAR, sha VARCHAR)")
    written = sum(graph.flush(dep_names) for graph in graphs.values())
    _apply(con, sorted(selected))
    return written


def _apply(con: duckdb.DuckDBPyConnection, scopes: list[Scope]) -> None:
    """Make the scopes' rows equal ``_attr_new`` by deleting and inserting only the difference.

    A re-run after one new commit then touches one row instead of rewriting the whole scope,
    which keeps the transaction and the checkpoint after it small.
    """
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _attr_ids AS
           SELECT d.id FROM deployments d
           JOIN (SELECT unnest($1::VARCHAR[]) AS service, unnest($2::VARCHAR[]) AS environment) s
           USING (service, environment)""",
        [[svc for svc, _ in scopes], [env for _, env in scopes]],
    )
    con.execute(
        """DELETE FROM deployment_changes dc
           WHERE dc.deployment_id IN (SELECT id FROM _attr_ids)
             AND NOT EXISTS (SELECT 1 FROM _attr_new n WHERE n.deployment_id = dc.deployment_id
                             AND n.repo = dc.repo AND n.sha = dc.sha)"""
    )
    con.execute(
        """INSERT INTO deployment_changes (deployment_id, repo, sha)
           SELECT n.deployment_id, n.repo, n.sha FROM _attr_new n
           WHERE NOT EXISTS (SELECT 1 FROM deployment_changes dc WHERE dc.deployment_id = n.deployment_id
                             AND dc.repo = n.repo AND dc.sha = n.sha)"""
    )
    con.execute("DROP TABLE _attr_new")
    con.execute("DROP TABLE _attr_ids")


def _with_tie_break(
    ordered: list[tuple[int, int, str, _RepoGraph, int]],
) -> list[tuple[int, int, str, _RepoGraph, int]]:
    """Sort by time; equal times by the revision's committer time, then deployment id."""
    times = [t for t, *_ in ordered]
    if len(set(times)) == len(times):
        return sorted(ordered, key=lambda d: (d[0], d[2]))
    by_graph: dict[int, dict[int, int]] = {}
    for *_, graph, number in ordered:
        by_graph.setdefault(id(graph), {})[number] = 0
    graphs = {id(g): g for *_, g, _ in ordered}
    for key, numbers in by_graph.items():
        numbers.update(graphs[key].committed_us(list(numbers)))
    return sorted(
        ((when, by_graph[id(graph)][number], dep_id, graph, number)
         for when, _, dep_id, graph, number in ordered),
        key=lambda d: (d[0], d[1], d[2]),
    )


def _warn_unresolved(con: duckdb.DuckDBPyConnection, scope: str, unresolved: list[str]) -> None:
    """One current warning per scope for the Data health page; attribution carries on without them."""
    con.execute(
        "DELETE FROM data_warnings WHERE source = 'attribution' AND target = ? "
        "AND kind = 'unresolved_revision'", [scope],
    )
    if not unresolved:
        return
    sample = ", ".join(unresolved[:3]) + (" ..." if len(unresolved) > 3 else "")
    con.execute(
        "INSERT INTO data_warnings VALUES ('attribution', ?, 'unresolved_revision', ?, ?, now())",
        [scope, f"deployments whose revision is not a collected commit: {sample}", len(unresolved)],
    )
