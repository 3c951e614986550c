"""What the GitHub and GitLab webhook providers share: the row shape of a pushed commit and the
re-derivation that follows a batch. Underscored, so the receiver does not serve it as a provider."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from analytics.collectors.codehost_mapping import reverts_sha
from analytics.config import Config
from analytics.store.connection import WriteSession
from analytics.webhooks.writer import TableRows, registered

Rows = dict[str, list[dict[str, Any]]]
ZERO_SHA = "0" * 40  # ``before``/``after`` of a push that creates or deletes a branch

# finalize re-derives PRs and deployment_changes: needless after e.g. an incidents-only batch
FINALIZE_AFTER = frozenset(
    {"commits", "deployments", "webhook_pull_requests", "pr_reviews", "webhook_pushes"}
)


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def commit_row(
    repo: str,
    sha: str,
    parent: str | None,
    author: dict[str, Any],
    committer: dict[str, Any],
    when: Any,
    message: str,
) -> dict[str, Any]:
    """A ``commits`` row from a push payload, which gives one time and no zone per commit."""
    return {
        "repo": repo, "sha": sha, "parents": [parent] if parent else [],
        "author_name": author.get("name"), "author_email": author.get("email"),
        "author_time": when, "author_tz": None,
        "committer_name": committer.get("name"), "committer_email": committer.get("email"),
        "committer_time": when, "committer_tz": None,
        "subject": message.splitlines()[0] if message else None, "is_merge": False,
        "reverts_sha": reverts_sha(message),
    }


def finalize(session: WriteSession, config: Config, rows: Mapping[str, Sequence[dict[str, Any]]]) -> None:
    """The steps of ``derive.derive_all`` whose inputs the batch's ``rows`` changed, each a no-op
    otherwise. On DuckLake every UPDATE or MERGE costs tens to hundreds of milliseconds even when it
    touches nothing, and the attribution a dozen statements, so running all of them after every
    push made each push delivery take seconds; a cheap SELECT decides instead."""
    from analytics.webhooks import derive

    con = session.con
    prs = bool(rows.get("webhook_pull_requests"))
    if prs:
        con.execute(derive._MERGE_PULL_REQUESTS)
    if prs or rows.get("pr_reviews"):
        con.execute(derive._FIRST_REVIEW)
    if prs or _pushes_to_pr_branches(session, rows.get("webhook_pushes") or []):
        con.execute(derive._FIRST_COMMIT_FROM_PUSHES)
    if rows.get("deployments") or _commits_change_attribution(session, rows.get("commits") or []):
        derive.attribute_webhook_deployments(session, config)


def _pushes_to_pr_branches(session: WriteSession, pushes: Sequence[dict[str, Any]]) -> bool:
    """Whether a pushed ref is the head branch of a stored PR (its first commit may change)."""
    if not pushes:
        return False
    found = session.con.execute(
        """SELECT 1 FROM pull_requests p
           JOIN (SELECT unnest($1::VARCHAR[]) AS repo, unnest($2::VARCHAR[]) AS ref) w
             ON w.repo = p.repo AND w.ref = 'refs/heads/' || p.head_ref
           LIMIT 1""",
        [[str(r.get("repo")) for r in pushes], [str(r.get("ref")) for r in pushes]],
    ).fetchall()
    return bool(found)


def _commits_change_attribution(session: WriteSession, commits: Sequence[dict[str, Any]]) -> bool:
    """Whether the batch's commits can change what a deployment shipped: a deployment's revision
    is one of them (full sha, a prefix of one, or a tag on one), a commit stored before names one as
    its parent (the walk from a deployment now goes further), or one was already attributed (its
    parents may have changed). New commits that nothing reaches change nothing.

    ``b`` and ``d`` are MATERIALIZED: DuckDB otherwise inlines ``b`` into each of its four uses and
    unnests the bound lists each time, which for a 30,000-commit push held ~100 MiB (measured;
    materialized: nothing measurable). The answer is the same either way."""
    if not commits:
        return False
    if isinstance(commits, TableRows):  # a large push: its Arrow table, not 2 bound lists of str
        with registered(session.con, commits) as name:
            return _commits_found(session, f"SELECT repo::VARCHAR AS repo, sha::VARCHAR AS sha FROM {name}",
                                  [])
    return _commits_found(session, "SELECT unnest($1::VARCHAR[]) AS repo, unnest($2::VARCHAR[]) AS sha",
                          [[str(c.get("repo")) for c in commits], [str(c.get("sha")) for c in commits]])


def _commits_found(session: WriteSession, commits_sql: str, params: list[Any]) -> bool:
    found = session.con.execute(
        f"""WITH b AS MATERIALIZED ({commits_sql}),
           d AS MATERIALIZED (SELECT repository AS repo, revision, raw_revision, lower(trim(revision)) AS rev
                 FROM deployments WHERE status = 'success' AND repository IN (SELECT repo FROM b))
           SELECT 1 FROM d JOIN b ON b.repo = d.repo
           WHERE b.sha IN (d.revision, d.raw_revision, d.rev)
              OR (length(d.rev) BETWEEN 4 AND 39 AND starts_with(b.sha, d.rev))
           UNION ALL
           SELECT 1 FROM tags t JOIN b ON t.repo = b.repo AND t.sha = b.sha
           JOIN d ON d.repo = t.repo AND t.name IN (d.revision, d.raw_revision)
           UNION ALL
           SELECT 1 FROM (SELECT repo, sha, unnest(parents) AS parent FROM commits
                          WHERE repo IN (SELECT repo FROM b)) c
           JOIN b ON c.repo = b.repo AND c.parent = b.sha
           WHERE c.sha NOT IN (SELECT sha FROM b)
           UNION ALL
           SELECT 1 FROM deployment_changes dc JOIN b ON dc.repo = b.repo AND dc.sha = b.sha
           LIMIT 1""",
        params,
    ).fetchall()
    return bool(found)
