"""Commits from CSV, JSON or YAML, for sources without a clone (``examples/import/commits.csv``).

Columns: ``repository, sha, parents, author, authored_at, committed_at, message`` (plus optional
``author_email``, ``committer``, ``committer_email``). ``parents`` is a list (JSON/YAML) or shas
separated by spaces, commas or semicolons (CSV); empty for a root commit. ``committed_at``
defaults to ``authored_at``. The first line of ``message`` is the subject; ``This reverts commit
<sha>`` in it marks a revert, as for collected commits.

A repository seen for the first time is registered (without a URL or clone), so deployments
imported for it have their changes attributed through the commit graph like a collected
repository's; deployments already stored for it are attributed again when its commits arrive.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from analytics.config import Config
from analytics.importers._fields import (
    RowContext,
    Timestamp,
    columns_present,
    normalise_keys,
    required_text,
    text,
    timestamp,
)
from analytics.importers.base import ImportSummary, ParsedFile
from analytics.store.connection import WriteSession
from analytics.store.upsert import merge_rows

KIND = "commits"
COLUMNS = ("repository", "sha", "parents", "author", "authored_at", "committed_at", "message")
_REQUIRED_TO_DETECT = {"repository", "sha", "authored_at"}
# a pull request's commits (pr_id or number) belong to the pull_requests kind
_NOT_COMMITS = {"pr_id", "number", "pull_request_id", "deployed_at"}
_SHA = re.compile(r"^[0-9a-fA-F]{7,64}$")
_SPLIT = re.compile(r"[\s,;]+")
_REVERTS = re.compile(r"This reverts commit ([0-9a-fA-F]{7,40})")


def detect(parsed: ParsedFile) -> bool:
    """A commit file has repository, sha and authored_at columns and nothing naming a PR."""
    keys = columns_present(parsed.records)
    return bool(parsed.records) and keys >= _REQUIRED_TO_DETECT and not keys & _NOT_COMMITS


def _sha(value: str, what: str, where: RowContext) -> str:
    if not _SHA.match(value):
        raise where.error(f"{what} {value!r} is not a commit sha (7 to 64 hex digits)")
    return value.lower()


def _parents(value: Any, where: RowContext) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else _SPLIT.split(str(value).strip())
    return [_sha(str(p).strip(), "parent", where) for p in items if str(p).strip()]


def _offset(raw: Any, stamp: Timestamp) -> str:
    """The UTC offset the input carried, as git writes it ("+0200"); "+0000" when it had none."""
    moment: datetime | None = raw if isinstance(raw, datetime) else None
    if moment is None and isinstance(raw, str) and stamp.had_zone:
        try:
            moment = datetime.fromisoformat(raw.strip())
        except ValueError:
            moment = None
    offset = moment.utcoffset() if moment is not None and moment.tzinfo is not None else None
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"


def load(session: WriteSession, parsed: ParsedFile, config: Config) -> ImportSummary:
    summary = ImportSummary(kind=KIND, path=parsed.path)
    rows: list[dict[str, Any]] = []
    first_line: dict[tuple[str, str], int] = {}
    for raw, line in zip(parsed.records, parsed.lines, strict=True):
        record = normalise_keys(raw)
        where = RowContext(parsed.path, line)
        repo = required_text(record, "repository", where)
        sha = _sha(required_text(record, "sha", where), "sha", where)
        if (repo, sha) in first_line:
            raise where.error(f"duplicate commit {repo}@{sha} (first on line {first_line[(repo, sha)]})")
        first_line[(repo, sha)] = line
        authored = timestamp(record, "authored_at", where)
        if authored is None:
            raise where.error("missing value for 'authored_at'")
        given_committed = timestamp(record, "committed_at", where)
        committed = given_committed or authored
        summary.naive_timestamps += sum(
            1 for t in (authored, given_committed) if t is not None and not t.had_zone)
        parents = _parents(record.get("parents"), where)
        message = text(record, "message") or ""
        reverts = _REVERTS.search(message)
        rows.append({
            "repo": repo,
            "sha": sha,
            "parents": parents,
            "author_name": text(record, "author"),
            "author_email": text(record, "author_email"),
            "author_time": authored.value,
            "author_tz": _offset(record.get("authored_at"), authored),
            "committer_name": text(record, "committer") or text(record, "author"),
            "committer_email": text(record, "committer_email") or text(record, "author_email"),
            "committer_time": committed.value,
            "committer_tz": _offset(record.get("committed_at") or record.get("authored_at"), committed),
            "subject": message.splitlines()[0].strip() if message.strip() else None,
            "is_merge": len(parents) > 1,
            "reverts_sha": reverts.group(1).lower() if reverts else None,
        })
    repos = sorted({r["repo"] for r in rows})
    known = {r[0] for r in session.con.execute(
        "SELECT id FROM repositories WHERE id IN (SELECT unnest(?::VARCHAR[]))", [repos]).fetchall()}
    new_repos = [r for r in repos if r not in known]
    merge_rows(session.con, "repositories", ["id", "is_bare", "is_shallow"],
               [[r, False, False] for r in new_repos], on_match="ignore")
    session.forget_repositories()
    session.upsert("commits", rows)
    summary.rows = len(rows)
    _expand_reverts(session, repos)
    if new_repos:
        summary.notes.append(
            f"{len(new_repos)} repositories registered without a clone: {', '.join(new_repos)}")
    scopes = [(str(s), str(e)) for s, e in session.con.execute(
        "SELECT DISTINCT service, environment FROM deployments"
        " WHERE repository IN (SELECT unnest(?::VARCHAR[]))",
        [repos]).fetchall()]
    if scopes:
        from analytics.deployments.attribution import attribute_changes

        attribute_changes(session, scopes=scopes)
        summary.notes.append(f"changes attributed again for {len(scopes)} service/environment scopes")
    return summary


def _expand_reverts(session: WriteSession, repos: list[str]) -> None:
    """An abbreviated sha in "This reverts commit <sha>" becomes the full sha when it is unique."""
    session.con.execute(
        """UPDATE commits SET reverts_sha = expanded.sha
           FROM (SELECT c.repo, c.sha AS reverting, min(t.sha) AS sha, count(*) AS n
                 FROM commits c JOIN commits t ON t.repo = c.repo AND starts_with(t.sha, c.reverts_sha)
                 WHERE c.repo IN (SELECT unnest(?::VARCHAR[])) AND length(c.reverts_sha) < 40
                 GROUP BY c.repo, c.sha) AS expanded
           WHERE commits.repo = expanded.repo AND commits.sha = expanded.reverting AND expanded.n = 1""",
        [repos],
    )
