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
    """One repository's commit graph and names, loaded from the store on first use."""

    def __init__(self, con: duckdb.DuckDBPyConnection, repo: str) -> None:
        rows = con.execute("SELECT sha, parents FROM commits WHERE repo = ?", [repo]).fetchall()
        self.parents: dict[str, list[str]] = {sha: parents for sha, parents in rows}
        self.tags: dict[str, str] = dict(
            con.execute("SELECT name, sha FROM tags WHERE repo = ?", [repo]).fetchall()
        )
        self._sorted: list[str] | None = None

    def resolve(self, revision: str | None) -> str | None:
        if not revision:
            return None
        rev = revision.strip()
        if rev in self.parents:
            return rev
        if rev in self.tags:
            return self.tags[rev]
        low = rev.lower()
        if low in self.parents:
            return low
        if _HEX.match(low):
            if self._sorted is None:
                self._sorted = sorted(self.parents)
            i = bisect.bisect_left(self._sorted, low)
            hits: list[str] = []
            while i < len(self._sorted) and self._sorted[i].startswith(low) and len(hits) < 2:
                hits.append(self._sorted[i])
                i += 1
            if len(hits) == 1:
                return hits[0]
        return None


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
                "SELECT DISTINCT service, environment FROM deployments WHERE list_contains($1, id)", [ids]
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
    -> every scope. Each selected scope's rows are deleted and re-inserted in the caller's
    transaction, so calling it again is idempotent. Rows of deleted deployments are removed too.
    Returns the number of rows written.
    """
    con = _connection(db)
    selected = _scopes(con, service, environment, deployment_ids, scopes)
    con.execute("DELETE FROM deployment_changes WHERE deployment_id NOT IN (SELECT id FROM deployments)")
    if not selected:
        return 0
    graphs: dict[str, _RepoGraph] = {}
    out_dep: list[str] = []
    out_repo: list[str] = []
    out_sha: list[str] = []
    for svc, env in sorted(selected):
        unresolved: list[str] = []
        con.execute(
            "DELETE FROM deployment_changes WHERE deployment_id IN "
            "(SELECT id FROM deployments WHERE service = ? AND environment = ?)", [svc, env],
        )
        rows = con.execute(
            """SELECT id, repository, coalesce(revision, raw_revision), raw_revision, epoch_us(deployed_at)
               FROM deployments WHERE service = ? AND environment = ? AND status = 'success'""",
            [svc, env],
        ).fetchall()
        ordered: list[tuple[int, int, str, str, str]] = []
        for dep_id, repo, revision, raw, when in rows:
            if repo is None:
                unresolved.append(f"{dep_id} (no repository)")
                continue
            graph = graphs.get(repo)
            if graph is None:
                graph = graphs[repo] = _RepoGraph(con, repo)
            sha = graph.resolve(revision) or graph.resolve(raw)
            if sha is None:
                unresolved.append(f"{dep_id} ({repo}@{revision})")
                continue
            ordered.append((int(when), 0, dep_id, repo, sha))
        ordered = _with_tie_break(con, ordered)
        seen: dict[str, set[str]] = {}
        for _when, _tie, dep_id, repo, sha in ordered:
            visited = seen.setdefault(repo, set())
            parents = graphs[repo].parents
            stack = [sha]
            while stack:
                current = stack.pop()
                if current in visited:
                    continue
                visited.add(current)
                out_dep.append(dep_id)
                out_repo.append(repo)
                out_sha.append(current)
                for parent in parents.get(current, ()):
                    if parent not in visited and parent in parents:
                        stack.append(parent)
        _warn_unresolved(con, f"{svc}/{env}", unresolved)
    if out_dep:
        con.execute(
            "INSERT OR REPLACE INTO deployment_changes (deployment_id, repo, sha) "
            "SELECT unnest($1::VARCHAR[]), unnest($2::VARCHAR[]), unnest($3::VARCHAR[])",
            [out_dep, out_repo, out_sha],
        )
    return len(out_dep)


def _with_tie_break(
    con: duckdb.DuckDBPyConnection, ordered: list[tuple[int, int, str, str, str]],
) -> list[tuple[int, int, str, str, str]]:
    """Sort by time; equal times by the revision's committer time, then deployment id."""
    times = [t for t, *_ in ordered]
    if len(set(times)) == len(times):
        return sorted(ordered)
    pairs = sorted({(repo, sha) for *_, repo, sha in ordered})
    committed = dict(
        ((repo, sha), int(us)) for repo, sha, us in con.execute(
            """SELECT c.repo, c.sha, epoch_us(c.committer_time) FROM commits c
               JOIN (SELECT unnest($1::VARCHAR[]) AS repo, unnest($2::VARCHAR[]) AS sha) p
               USING (repo, sha)""",
            [[p[0] for p in pairs], [p[1] for p in pairs]],
        ).fetchall()
    )
    return sorted(
        (when, committed.get((repo, sha), 0), dep_id, repo, sha) for when, _, dep_id, repo, sha in ordered
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
