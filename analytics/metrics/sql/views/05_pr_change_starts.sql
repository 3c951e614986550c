-- Where a merged pull request's change really started. A squash or rebase merge creates a new
-- commit whose author time is the merge moment, which would hide the time spent in review; the
-- PR's first commit is the honest start. change_lead_times prefers this start when present.
-- (The code-host collector refines this view; the output columns stay repo, sha, first_commit_at.)
CREATE OR REPLACE TEMP VIEW pr_change_starts AS
WITH merged_prs AS (
    SELECT repo, merge_commit_sha AS sha, first_commit_at
    FROM pull_requests
    WHERE merged_at IS NOT NULL
      AND merge_commit_sha IS NOT NULL
      AND first_commit_at IS NOT NULL
),
deployed_commits AS (
    SELECT DISTINCT repo, sha FROM deployment_changes
),
deployed_pr_merges AS (
    SELECT m.repo, m.sha, m.first_commit_at
    FROM merged_prs m
    JOIN deployed_commits d ON d.repo = m.repo AND d.sha = m.sha
)
SELECT repo, sha, min(first_commit_at) AS first_commit_at
FROM deployed_pr_merges
GROUP BY repo, sha;
