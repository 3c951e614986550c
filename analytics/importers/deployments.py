"""Deployments from CI systems the tool does not integrate with (CSV, JSON or YAML).

Columns: ``id, service, environment, revision, deployed_at, status, repository`` (plus optional
``started_at`` and ``rollback``: true when the deployment rolled back to an earlier revision).
A revision that names a commit (full or abbreviated sha) or a tag of a collected repository is
resolved to the full sha and the deployment's changes are attributed through git like any other
deployment's.
"""

from __future__ import annotations

import re
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


def load(session: WriteSession, parsed: ParsedFile, config: Config) -> ImportSummary:
    summary = ImportSummary(kind=KIND, path=parsed.path)
    rows: list[dict[str, Any]] = []
    first_line: dict[str, int] = {}
    for raw, line in zip(parsed.records, parsed.lines, strict=True):
        record = normalise_keys(raw)
        where = RowContext(parsed.path, line)
        dep_id = required_text(record, "id", where)
        if dep_id in first_line:
            raise where.error(f"duplicate deployment id {dep_id!r} (first on line {first_line[dep_id]})")
        first_line[dep_id] = line
        service = required_text(record, "service", where)
        environment = required_text(record, "environment", where)
        raw_revision = required_text(record, "revision", where)
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
        revision, repository, fmt = _resolve(session, text(record, "repository"), raw_revision)
        if fmt == "unknown":
            summary.unknown_revisions += 1
        rows.append(
            {
                "id": dep_id,
                "service": service,
                "environment": environment,
                "revision": revision,
                "repository": repository,
                "started_at": started.value if started else None,
                "deployed_at": deployed.value,
                "status": _STATUS[status_text],
                "source": "import",
                "source_ref": dep_id,
                "is_rollback": is_rollback,
                "rollback_target": revision if is_rollback else None,
                "raw_revision": raw_revision,
                "revision_format": fmt,
            }
        )
    register_named(session, config, [r["service"] for r in rows], [r["environment"] for r in rows])
    session.upsert("deployments", rows)
    summary.rows = len(rows)
    attributed = _attribute(session, rows)
    if attributed:
        summary.notes.append(f"{attributed} deployments with changes attributed through git")
    return summary


def _attribute(session: WriteSession, rows: list[dict[str, Any]]) -> int | None:
    """Attribute changes for deployments whose revision is in a collected repo (git developer's code)."""
    collected = {r[0] for r in session.con.execute("SELECT id FROM repositories").fetchall()}
    ids = [r["id"] for r in rows if r["repository"] in collected]
    if not ids:
        return 0
    try:
        from analytics.deployments.attribution import attribute_changes
    except ImportError:  # the git collector is not installed in this build
        return None
    attribute_changes(session, deployment_ids=ids)
    return len(ids)
