"""Re-derivations after a webhook batch: PR state, first review/commit, and what each deployment shipped.

Webhooks report facts piecemeal (a review here, a push there), so the provider rows go to staging
tables and these steps rebuild the derived tables from everything stored. Each step is idempotent.
"""

from __future__ import annotations

from analytics.config import Config
from analytics.deployments.dimensions import ensure_dimensions
from analytics.store.connection import WriteSession

# A webhook never knows first_commit_at/commit_shas that the API collector stored: keep them.
_MERGE_PULL_REQUESTS = """
MERGE INTO pull_requests AS p
USING (SELECT repo, number, provider, title, author, state, created_at, merged_at, closed_at,
              merge_commit_sha, base_ref, head_ref, labels, url, updated_at
       FROM webhook_pull_requests) AS w
ON p.repo = w.repo AND p.number = w.number
-- never let an older webhook state overwrite a newer one (e.g. from a later API collection)
WHEN MATCHED AND (w.updated_at IS NULL OR p.updated_at IS NULL OR w.updated_at >= p.updated_at)
THEN UPDATE SET
    title = w.title, author = coalesce(w.author, p.author), state = w.state,
    created_at = coalesce(w.created_at, p.created_at),
    merged_at = coalesce(w.merged_at, p.merged_at), closed_at = w.closed_at,
    merge_commit_sha = coalesce(w.merge_commit_sha, p.merge_commit_sha),
    base_ref = coalesce(w.base_ref, p.base_ref), head_ref = coalesce(w.head_ref, p.head_ref),
    labels = w.labels, url = coalesce(w.url, p.url), updated_at = w.updated_at
WHEN NOT MATCHED THEN INSERT (repo, number, provider, title, author, state, created_at, merged_at, closed_at,
                              merge_commit_sha, base_ref, head_ref, labels, url, updated_at)
    VALUES (w.repo, w.number, w.provider, w.title, w.author, w.state, w.created_at, w.merged_at, w.closed_at,
            w.merge_commit_sha, w.base_ref, w.head_ref, w.labels, w.url, w.updated_at)
"""

# The first review by someone other than the PR's author (docs/metrics.md): the author's own
# comments, reviews or GitLab self-approvals are not a pickup.
_FIRST_REVIEW = """
UPDATE pull_requests AS p SET first_review_at = r.first_review_at
FROM (
    SELECT v.repo, v.number, min(v.submitted_at) AS first_review_at
    FROM pr_reviews v
    JOIN pull_requests pr ON pr.repo = v.repo AND pr.number = v.number
    WHERE pr.author IS NULL OR v.author IS NULL OR lower(v.author) <> lower(pr.author)
    GROUP BY ALL
) AS r
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
    WHERE p.merged_at IS NULL OR w.pushed_at <= p.merged_at
),
per_pr AS (
    SELECT repo, number, min(author_time) AS first_commit_at, list(DISTINCT sha ORDER BY sha) AS shas
    FROM pushed_to_head GROUP BY ALL
)
UPDATE pull_requests AS p
SET first_commit_at = least(coalesce(p.first_commit_at, per_pr.first_commit_at), per_pr.first_commit_at),
    commit_shas = list_sort(list_distinct(list_concat(coalesce(p.commit_shas, []), per_pr.shas)))
FROM per_pr WHERE p.repo = per_pr.repo AND p.number = per_pr.number
  AND (p.first_commit_at IS NULL OR per_pr.first_commit_at < p.first_commit_at
       OR NOT list_has_all(coalesce(p.commit_shas, []), per_pr.shas))
"""


def derive_all(session: WriteSession, config: Config) -> None:
    con = session.con
    con.execute(_MERGE_PULL_REQUESTS)
    con.execute(_FIRST_REVIEW)
    con.execute(_FIRST_COMMIT_FROM_PUSHES)
    attribute_webhook_deployments(session, config)


def attribute_webhook_deployments(session: WriteSession, config: Config) -> None:
    """Fill deployment_changes for the scopes that have webhook deployments.

    Uses the shared attribution rule over the stored commit graph; without a clone that graph
    comes from pushes (the ``before`` of a push is the parent of its first commit), so a
    deployment also ships earlier pushes nobody deployed yet.
    """
    from analytics.deployments.attribution import attribute_changes

    ensure_dimensions(session, config)
    scopes = session.con.execute(
        "SELECT DISTINCT service, environment FROM deployments WHERE source = 'webhook'"
    ).fetchall()
    if scopes:
        attribute_changes(session, scopes=[(str(s), str(e)) for s, e in scopes])
