-- Where a merged pull request's change really started. A squash or rebase merge creates a new
-- commit whose author time is the merge moment, which would hide the coding and review time
-- (fourkeys #456, #410); when such a commit (the PR's merge_commit_sha) is a deployed change, its
-- start is the PR's first commit. Output columns: repo, sha, first_commit_at (change_lead_times
-- left-joins this on its deployed changes and prefers first_commit_at when present, so no scan of
-- deployment_changes is needed here).
-- Rules: only merged PRs (GitHub also fills merge_commit_sha with a test merge on open PRs);
-- without a known first commit (webhook-only, no pushes seen) the PR's creation is the earliest
-- evidence of work; the start is never later than the merge commit's own author time.
CREATE OR REPLACE TEMP VIEW pr_change_starts AS
WITH merged_prs AS (
    SELECT repo,
           merge_commit_sha AS sha,
           coalesce(first_commit_at, created_at) AS pr_start
    FROM pull_requests
    WHERE merged_at IS NOT NULL
      AND merge_commit_sha IS NOT NULL
      AND coalesce(first_commit_at, created_at) IS NOT NULL
),
earliest_pr_start AS (
    SELECT repo, sha, min(pr_start) AS pr_start
    FROM merged_prs
    GROUP BY repo, sha
),
start_not_after_commit AS (
    SELECT s.repo, s.sha, least(s.pr_start, coalesce(c.author_time, s.pr_start)) AS first_commit_at
    FROM commits c
    RIGHT JOIN earliest_pr_start s ON c.repo = s.repo AND c.sha = s.sha
)
SELECT repo, sha, first_commit_at
FROM start_not_after_commit;
