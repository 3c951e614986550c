"""Re-derivations after a webhook batch: PR state, first review/commit, and what each deployment shipped.

Webhooks report facts piecemeal (a review here, a push there), so the provider rows go to staging
tables and these steps rebuild the derived tables from everything stored. Each step is idempotent.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from analytics.config import Config
from analytics.store.connection import WriteSession

# A webhook never knows first_commit_at/commit_shas that the API collector stored: keep them.
_MERGE_PULL_REQUESTS = """
INSERT INTO pull_requests (repo, number, provider, title, author, state, created_at, merged_at, closed_at,
                           merge_commit_sha, base_ref, head_ref, labels, url, updated_at)
SELECT repo, number, provider, title, author, state, created_at, merged_at, closed_at,
       merge_commit_sha, base_ref, head_ref, labels, url, updated_at
FROM webhook_pull_requests
ON CONFLICT (repo, number) DO UPDATE SET
    title = excluded.title, author = coalesce(excluded.author, author), state = excluded.state,
    created_at = coalesce(excluded.created_at, created_at),
    merged_at = coalesce(excluded.merged_at, merged_at), closed_at = excluded.closed_at,
    merge_commit_sha = coalesce(excluded.merge_commit_sha, merge_commit_sha),
    base_ref = coalesce(excluded.base_ref, base_ref), head_ref = coalesce(excluded.head_ref, head_ref),
    labels = excluded.labels, url = coalesce(excluded.url, url), updated_at = excluded.updated_at
"""

_FIRST_REVIEW = """
UPDATE pull_requests AS p SET first_review_at = r.first_review_at
FROM (SELECT repo, number, min(submitted_at) AS first_review_at FROM pr_reviews GROUP BY ALL) AS r
WHERE p.repo = r.repo AND p.number = r.number
  AND (p.first_review_at IS NULL OR p.first_review_at > r.first_review_at)
"""

# Without the API, a PR's commits are the ones pushed to its head branch before it merged.
_FIRST_COMMIT_FROM_PUSHES = """
WITH pushed_to_head AS (
    SELECT p.repo, p.number, c.sha, c.author_time
    FROM pull_requests p
    JOIN webhook_pushes w ON w.repo = p.repo AND w.ref = 'refs/heads/' || p.head_ref
    JOIN commits c ON c.repo = w.repo AND list_contains(w.commit_shas, c.sha)
    WHERE p.commit_shas IS NULL AND (p.merged_at IS NULL OR w.pushed_at <= p.merged_at)
),
per_pr AS (
    SELECT repo, number, min(author_time) AS first_commit_at, list(DISTINCT sha ORDER BY sha) AS shas
    FROM pushed_to_head GROUP BY ALL
)
UPDATE pull_requests AS p SET first_commit_at = per_pr.first_commit_at, commit_shas = per_pr.shas
FROM per_pr WHERE p.repo = per_pr.repo AND p.number = per_pr.number
"""


def derive_all(session: WriteSession, config: Config) -> None:
    con = session.con
    con.execute(_MERGE_PULL_REQUESTS)
    con.execute(_FIRST_REVIEW)
    con.execute(_FIRST_COMMIT_FROM_PUSHES)
    attribute_webhook_deployments(session)


def attribute_webhook_deployments(session: WriteSession) -> None:
    """Fill deployment_changes for webhook deployments of repositories that have no clone.

    Each commit belongs to the first successful deployment (by time) of the same service and
    environment whose revision reaches it through the parent links that pushes recorded (the
    ``before`` of a push is the parent of its first commit), so a deployment also ships earlier
    pushes nobody deployed yet.
    """
    con = session.con
    deployments = con.execute(
        """
        SELECT d.id, d.service, d.environment, d.repository, d.revision
        FROM deployments d
        WHERE d.source = 'webhook' AND d.status = 'success' AND d.repository IS NOT NULL
          AND d.repository NOT IN (SELECT id FROM repositories WHERE local_path IS NOT NULL)
        ORDER BY d.deployed_at, d.id
        """
    ).fetchall()
    if not deployments:
        return
    repos = sorted({row[3] for row in deployments})
    parents: dict[tuple[str, str], list[str]] = {}
    for repo, sha, commit_parents in con.execute(
        "SELECT repo, sha, parents FROM commits WHERE list_contains(?, repo)", [repos]
    ).fetchall():
        parents[(repo, sha)] = list(commit_parents or [])
    shipped: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
    rows: list[dict[str, Any]] = []
    for dep_id, service, environment, repo, revision in deployments:
        seen = shipped[(service, environment)]
        stack = [(repo, revision)]
        while stack:
            node = stack.pop()
            if node in seen or node not in parents:
                continue
            seen.add(node)
            rows.append({"deployment_id": dep_id, "repo": node[0], "sha": node[1]})
            stack.extend((repo, parent) for parent in parents[node])
    con.execute(
        "DELETE FROM deployment_changes WHERE deployment_id IN (SELECT id FROM deployments"
        " WHERE source = 'webhook' AND repository NOT IN"
        " (SELECT id FROM repositories WHERE local_path IS NOT NULL))"
    )
    session.upsert("deployment_changes", rows, columns=["deployment_id", "repo", "sha"])
