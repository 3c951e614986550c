"""How code-host names (``owner/name``, labels, issue bodies) map onto our repositories and services.

Shared by the GitHub/GitLab collectors and webhook providers so that an API collection and a
webhook delivery about the same repository land on the same repo id and service.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

    from analytics.store.connection import WriteSession

from analytics.config import Config
from analytics.store.literals import execute

_ROOT_CAUSE = re.compile(r"(?im)^\W*root[ _-]?cause\W*:\s*`?([0-9a-f]{7,40})\b")
_REVERTS = re.compile(r"This reverts commit ([0-9a-f]{7,40})")


def _basename(location: str) -> str:
    tail = location.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    return tail[:-4] if tail.endswith(".git") else tail


def _mentions(location: str, full_name: str) -> bool:
    clean = location.rstrip("/")
    clean = clean[:-4] if clean.endswith(".git") else clean
    return clean == full_name or clean.endswith("/" + full_name) or clean.endswith(":" + full_name)


def repo_id(full_name: str, config: Config) -> str:
    """The configured repository's id (its basename) when a service lists it, else ``owner/name``.

    The git collector names a repository by its basename, so a configured repo collected both
    from git and from the API shares one id and commits join deployments.
    """
    name = full_name.rsplit("/", 1)[-1]
    for service in config.services:
        for location in service.repositories:
            if _mentions(location, full_name) or _basename(location) == name:
                return _basename(location)
    return full_name


def service_for(repo: str, full_name: str, config: Config) -> str:
    """The service that lists this repository; otherwise the repository's short name."""
    for service in config.services:
        for location in service.repositories:
            if _mentions(location, full_name) or _basename(location) == repo or location == repo:
                return service.name
    return full_name.rsplit("/", 1)[-1]


def incident_labels(config: Config, provider: str) -> set[str]:
    host = config.connections.github if provider == "github" else config.connections.gitlab
    return {label.lower() for label in [*host.incident_labels, *config.incidents.labels]}


def is_incident(labels: Iterable[str], wanted: set[str]) -> bool:
    """Case-insensitive: ``Incident`` and ``incident`` are the same label."""
    return any(label.lower() in wanted for label in labels)


def root_cause(body: str | None) -> str | None:
    """The sha of a ``root cause: <sha>`` line in an issue body."""
    if not body:
        return None
    m = _ROOT_CAUSE.search(body)
    return m.group(1) if m else None


def reverts_sha(message: str | None) -> str | None:
    m = _REVERTS.search(message or "")
    return m.group(1) if m else None


def later(first: datetime | None, second: datetime | None) -> datetime | None:
    """The later of two times, either of which may be missing: a watermark and a --since bound,
    or the newest ``updated_at`` seen so far and the next one."""
    if first is None or second is None:
        return first or second
    return max(first, second)


def resolve_repo_id(
    con: duckdb.DuckDBPyConnection | None, full_name: str, config: Config, explicit: str | None
) -> str:
    """--repo-id, else a collected repository that is this one (by id or URL), else the config's name.
    ``con`` reads the store (None: there is no store yet)."""
    if explicit:
        return explicit
    name = full_name.rsplit("/", 1)[-1]
    rows = [] if con is None else execute(
        con,
        "SELECT id FROM repositories WHERE id = ? OR id = ? OR url LIKE ? OR url LIKE ? OR web_url LIKE ?"
        " ORDER BY id = ? DESC LIMIT 1",
        [full_name, name, f"%/{full_name}", f"%/{full_name}.git", f"%/{full_name}", full_name],
    ).fetchall()
    return str(rows[0][0]) if rows else repo_id(full_name, config)


def note_unmatched_merges(session: WriteSession, repo: str) -> None:
    """A Data health note when merged PRs point at commits the store does not have: their
    squash-merge start cannot be applied until ``collect git`` (or push webhooks) brings them."""
    rows = execute(
        session.con,
        """SELECT count(*) FROM pull_requests p
           WHERE p.repo = ? AND p.merged_at IS NOT NULL AND p.merge_commit_sha IS NOT NULL
             AND NOT EXISTS (SELECT 1 FROM commits c WHERE c.repo = p.repo AND c.sha = p.merge_commit_sha)""",
        [repo],
    ).fetchall()
    missing = int(rows[0][0]) if rows else 0
    execute(
        session.con,
        "DELETE FROM data_warnings WHERE source = ? AND target = ? AND kind = 'pr_merge_commit_unknown'",
        [session.source, session.target],
    )
    if missing:
        session.warn("pr_merge_commit_unknown",
                     f"{missing} merged PRs of {repo} name a merge commit that is not in the collected "
                     "git history; run `collect git` for it (or check --repo-id)", missing)


class ShapeError(ValueError):
    """The API answered JSON of the wrong shape: an item without its key, or a field of the wrong
    type. Caught by the collectors before anything is written, as one line."""


# what every row of a table needs to be stored and found again (its key and the time it is about)
_REQUIRED = {
    "pull_requests": ("repo", "number"),
    "pr_reviews": ("repo", "number", "review_id"),
    "deployments": ("id", "revision", "deployed_at"),
    "incidents": ("id", "created_at"),
    "releases": ("repo", "tag_name"),
}


def _kind_ok(key: str, value: object) -> bool:
    if value is None:
        return True
    if key.endswith("_at"):
        return isinstance(value, datetime)
    if key == "number":
        return isinstance(value, int) and not isinstance(value, bool)
    if key.startswith("is_"):
        return isinstance(value, bool)
    if key in ("labels", "commit_shas"):
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return isinstance(value, str)


def check_rows(tables: dict[str, list[dict[str, object]]]) -> None:
    """Refuse rows made from items of the wrong shape (a missing id, a number that is text, a list
    where a name was expected), before anything is written: such a row would fail the store's
    write half-way, or be stored under a key no later run finds."""
    for table, rows in tables.items():
        required = _REQUIRED.get(table, ())
        for row in rows:
            for key in required:
                if row.get(key) is None:
                    raise ShapeError(f"an item for {table} has no {key}")
            for key, value in row.items():
                if not _kind_ok(key, value):
                    raise ShapeError(f"an item for {table} has {key} of type {type(value).__name__}")
