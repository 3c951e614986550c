"""Deployments from CI systems the tool does not integrate with (CSV, JSON or YAML).

Columns: ``id, service, environment, revision, deployed_at, status, repository`` (plus optional
``started_at`` and ``rollback``: true when the deployment rolled back to an earlier revision).
A revision that names a commit (full or abbreviated sha) or a tag of a collected repository is
resolved to the full sha and the deployment's changes are attributed through git like any other
deployment's.

A deployment that ships several repositories at once (one pipeline deploying many) lists
``repository=revision`` pairs in ``revision`` and leaves ``repository`` empty: ``api=1a2b3c4
web=v2.1`` (separated by spaces, commas or semicolons), or a mapping / list of pairs in JSON and
YAML. Each repository's changes are its commits since its own previous deployment to the same
service and environment (docs/metrics.md, "Deployments of several repositories").

An empty environment means ``deployments.default_environment`` (else the first production
environment), counted in the summary and as a ``default_environment`` data warning.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from analytics.config import Config
from analytics.deployments.dimensions import register_named
from analytics.importers._fields import (
    RowContext,
    columns_present,
    normalise_keys,
    required_text,
    text,
    timestamp,
)
from analytics.importers.base import ImportSummary, ParsedFile
from analytics.store.connection import WriteSession

KIND = "deployments"
COLUMNS = ("id", "service", "environment", "revision", "deployed_at", "status", "repository")
_REQUIRED_TO_DETECT = {"id", "service", "deployed_at", "revision"}
_HEX = re.compile(r"^[0-9a-fA-F]{7,40}$")
_PAIR_SPLIT = re.compile(r"[\s,;]+")
_BOOL = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
_STATUS = {
    "success": "success", "succeeded": "success", "successful": "success", "ok": "success",
    "failed": "failed", "failure": "failed", "error": "failed",
}


def detect(parsed: ParsedFile) -> bool:
    """A deployment file has id, service, revision and deployed_at columns."""
    return bool(parsed.records) and columns_present(parsed.records) >= _REQUIRED_TO_DETECT


def _resolve(session: WriteSession, repository: str | None, revision: str) -> tuple[str, str | None, str]:
    """(revision, repository, format): a full sha and its repo when a collected repo knows it."""
    params: list[Any] = []
    repo_filter = ""
    if repository:
        repo_filter = " AND repo = ?"
        params.append(repository)
    if _HEX.match(revision):
        hits = session.con.execute(
            f"SELECT DISTINCT repo, sha FROM commits WHERE starts_with(sha, ?){repo_filter} LIMIT 2",
            [revision.lower(), *params],
        ).fetchall()
        if len(hits) == 1:
            return hits[0][1], hits[0][0], "sha"
        return revision.lower(), repository, "sha"
    hits = session.con.execute(
        f"SELECT DISTINCT repo, sha FROM tags WHERE name = ?{repo_filter} LIMIT 2", [revision, *params]
    ).fetchall()
    if len(hits) == 1:
        return hits[0][1], hits[0][0], "tag"
    return revision, repository, "unknown"


Resolution = tuple[str, str | None, str]


def resolve_many(session: WriteSession, requests: Iterable[tuple[str | None, str]]) -> dict[
        tuple[str | None, str], Resolution]:
    """:func:`_resolve` of every (repository, revision) request, in two set-based queries (a
    file of a million deployments used to take a query per row): a hex revision is the one
    (repo, sha) of the commits it prefixes, a name the one (repo, sha) of the tags so named, in
    the given repository when there is one; otherwise the revision as given."""
    keys = list(dict.fromkeys(requests))
    if not keys:
        return {}
    import uuid

    import pandas as pd

    hexes = [bool(_HEX.match(rev)) for _, rev in keys]
    frame = pd.DataFrame({
        "i": range(len(keys)), "repo": [repo or None for repo, _ in keys],
        "rev": [rev.lower() if is_hex else rev for (_, rev), is_hex in zip(keys, hexes, strict=True)],
        "hex": hexes,
    })
    name = f"_resolve_{uuid.uuid4().hex[:8]}"
    session.con.register(name, frame)
    try:
        # the 7-character prefix makes the sha match an equi-join (a revision is 7+ hex digits)
        shas = session.con.execute(
            f"SELECT i, count(*), min(repo), min(sha) FROM (SELECT DISTINCT q.i, c.repo, c.sha FROM {name} q "
            "JOIN commits c ON q.hex AND left(c.sha, 7) = left(q.rev, 7) AND starts_with(c.sha, q.rev) "
            "AND (q.repo IS NULL OR c.repo = q.repo)) GROUP BY i").fetchall()
        tags = session.con.execute(
            f"SELECT i, count(*), min(repo), min(sha) FROM (SELECT DISTINCT q.i, t.repo, t.sha FROM {name} q "
            "JOIN tags t ON NOT q.hex AND t.name = q.rev AND (q.repo IS NULL OR t.repo = q.repo)) GROUP BY i"
        ).fetchall()
    finally:
        session.con.unregister(name)
    found = {int(i): (str(sha), str(repo)) for i, count, repo, sha in [*shas, *tags] if count == 1}
    out: dict[tuple[str | None, str], Resolution] = {}
    for i, ((repository, revision), is_hex) in enumerate(zip(keys, hexes, strict=True)):
        if i in found:
            out[(repository, revision)] = (found[i][0], found[i][1], "sha" if is_hex else "tag")
        elif is_hex:
            out[(repository, revision)] = (revision.lower(), repository, "sha")
        else:
            out[(repository, revision)] = (revision, repository, "unknown")
    return out


def revision_pairs(value: Any, repository: str | None, where: RowContext) -> list[tuple[str, str]] | None:
    """The ``repository=revision`` pairs of a deployment shipping several repositories, or None
    for a plain revision. Pairs only when no ``repository`` column value is given, so a tag that
    happens to hold ``=`` stays one revision of its repository."""
    if repository is not None:
        return None
    if isinstance(value, dict):
        items = [f"{k}={v}" for k, v in value.items()]
    elif isinstance(value, list):
        items = [str(v) for v in value]
    elif isinstance(value, str) and "=" in value:
        items = [part for part in _PAIR_SPLIT.split(value.strip()) if part]
    else:
        return None
    pairs: list[tuple[str, str]] = []
    for item in items:
        repo, sep, revision = str(item).partition("=")
        if not sep or not repo.strip() or not revision.strip():
            raise where.error(f"revision pair {item!r} is not repository=revision")
        if any(repo.strip() == known for known, _ in pairs):
            raise where.error(f"repository {repo.strip()!r} is listed twice in 'revision'")
        pairs.append((repo.strip(), revision.strip()))
    if not pairs:
        raise where.error("missing value for 'revision'")
    return pairs


def revision_rows(session: WriteSession, dep_id: str, pairs: list[tuple[str, str]],
                  summary: ImportSummary) -> list[dict[str, Any]]:
    """deployment_revisions rows for the pairs, each revision resolved in its repository."""
    out = []
    for repo, raw in pairs:
        revision, repository, fmt = _resolve(session, repo, raw)
        if fmt == "unknown":
            summary.unknown_revisions += 1
        out.append({"deployment_id": dep_id, "repository": repository or repo, "revision": revision,
                    "raw_revision": raw, "revision_format": fmt})
    return out


def replace_revisions(session: WriteSession, ids: list[str], rows: list[dict[str, Any]]) -> None:
    """Make the stored pairs of these deployments exactly ``rows`` (a deployment imported again
    with one repository loses its earlier pairs)."""
    if ids:
        session.con.execute("DELETE FROM deployment_revisions WHERE deployment_id IN "
                            "(SELECT unnest(?::VARCHAR[]))", [ids])
    if rows:
        session.upsert("deployment_revisions", rows)


def note_default_environment(session: WriteSession, summary: ImportSummary, count: int, env: str,
                             what: str = "deployments") -> None:
    """A row that named no environment was put in the default one: said in the summary and kept
    as a data warning, because metrics of that environment now include rows nobody placed there."""
    if count:
        summary.notes.append(f"{count} {what} without an environment assigned to {env}")
        session.warn("default_environment", f"{what} without an environment assigned to {env}", count)


def load(session: WriteSession, parsed: ParsedFile, config: Config) -> ImportSummary:
    summary = ImportSummary(kind=KIND, path=parsed.path)
    rows: list[dict[str, Any]] = []
    pair_rows: list[dict[str, Any]] = []
    pending: list[tuple[list[tuple[str, str]] | None, str | None, str]] = []
    first_line: dict[str, int] = {}
    default_env = config.default_deployment_environment()
    defaulted = 0
    for raw, line in zip(parsed.records, parsed.lines, strict=True):
        record = normalise_keys(raw)
        where = RowContext(parsed.path, line)
        dep_id = required_text(record, "id", where)
        if dep_id in first_line:
            raise where.error(f"duplicate deployment id {dep_id!r} (first on line {first_line[dep_id]})")
        first_line[dep_id] = line
        service = required_text(record, "service", where)
        environment = text(record, "environment")
        if environment is None:
            environment = default_env
            defaulted += 1
        pairs = revision_pairs(record.get("revision"), text(record, "repository"), where)
        raw_revision = pairs[0][1] if pairs else required_text(record, "revision", where)
        deployed = timestamp(record, "deployed_at", where)
        if deployed is None:
            raise where.error("missing value for 'deployed_at'")
        started = timestamp(record, "started_at", where)
        if started is not None and started.value > deployed.value:
            raise where.error("'started_at' is later than 'deployed_at'")
        summary.naive_timestamps += sum(1 for t in (deployed, started) if t is not None and not t.had_zone)
        status_text = (text(record, "status") or "success").lower()
        if status_text not in _STATUS:
            raise where.error(f"unknown status {status_text!r} (use success or failed)")
        rollback_text = (text(record, "rollback") or "false").lower()
        if rollback_text not in _BOOL:
            raise where.error(f"'rollback' is not true or false: {rollback_text!r}")
        is_rollback = _BOOL[rollback_text]
        # the revision is resolved below, for every row at once
        pending.append((pairs, text(record, "repository"), raw_revision))
        rows.append(
            {
                "id": dep_id,
                "service": service,
                "environment": environment,
                "started_at": started.value if started else None,
                "deployed_at": deployed.value,
                "status": _STATUS[status_text],
                "source": "import",
                "source_ref": dep_id,
                "is_rollback": is_rollback,
                "raw_revision": raw_revision,
            }
        )
    requests: list[tuple[str | None, str]] = []
    for pairs, repo, raw_rev in pending:
        requests.extend(pairs or [(repo, raw_rev)])
    resolved = resolve_many(session, requests)
    for row, (pairs, repo, raw_rev) in zip(rows, pending, strict=True):
        if pairs:
            shipped = []
            for pair_repo, pair_raw in pairs:
                revision, repository, fmt = resolved[(pair_repo, pair_raw)]
                if fmt == "unknown":
                    summary.unknown_revisions += 1
                shipped.append({"deployment_id": row["id"], "repository": repository or pair_repo,
                                "revision": revision, "raw_revision": pair_raw, "revision_format": fmt})
            pair_rows.extend(shipped)
            revision, repository, fmt = shipped[0]["revision"], shipped[0]["repository"], \
                shipped[0]["revision_format"]
        else:
            revision, repository, fmt = resolved[(repo, raw_rev)]
            if fmt == "unknown":
                summary.unknown_revisions += 1
        row.update(revision=revision, repository=repository, revision_format=fmt,
                   rollback_target=revision if row["is_rollback"] else None)
    order = ("id", "service", "environment", "revision", "repository", "started_at", "deployed_at", "status",
             "source", "source_ref", "is_rollback", "rollback_target", "raw_revision", "revision_format")
    rows = [{key: row[key] for key in order} for row in rows]  # the columns in the table's order
    register_named(session, config, [r["service"] for r in rows], [r["environment"] for r in rows])
    session.upsert("deployments", rows)
    replace_revisions(session, [r["id"] for r in rows], pair_rows)
    summary.rows = len(rows)
    if pair_rows:
        several = len({r["deployment_id"] for r in pair_rows})
        summary.notes.append(f"{several} deployments of several repositories")
    note_default_environment(session, summary, defaulted, default_env)
    attributed = _attribute(session, rows, pair_rows)
    if attributed:
        summary.notes.append(f"{attributed} deployments with changes attributed through git")
    return summary


def _attribute(session: WriteSession, rows: list[dict[str, Any]],
               pair_rows: list[dict[str, Any]] | None = None) -> int | None:
    """Attribute changes for deployments whose revision is in a collected repo (git developer's code)."""
    collected = {r[0] for r in session.con.execute("SELECT id FROM repositories").fetchall()}
    several = {r["deployment_id"] for r in pair_rows or [] if r["repository"] in collected}
    ids = [r["id"] for r in rows if r["repository"] in collected or r["id"] in several]
    if not ids:
        return 0
    try:
        from analytics.deployments.attribution import attribute_changes
    except ImportError:  # the git collector is not installed in this build
        return None
    attribute_changes(session, deployment_ids=ids)
    return len(ids)
