-- Where a merged pull request's change really started. A squash or rebase merge creates a new
-- commit whose author time is the merge moment, which would hide the coding and review time
-- (fourkeys #456, #410); when such a commit (the PR's merge_commit_sha) is a deployed change, its
-- start is the PR's first commit. Output columns: repo, sha, first_commit_at (change_lead_times
-- prefers first_commit_at when present).
-- Rules: only merged PRs (GitHub also fills merge_commit_sha with a test merge on open PRs);
-- without a known first commit (webhook-only, no pushes seen) the PR's creation is the earliest
-- evidence of work; the start is never later than the deployed commit's own author time.
CREATE OR REPLACE TEMP VIEW pr_change_starts AS
WITH merged_prs AS (
    SELECT repo, merge_commit_sha AS sha, first_commit_at
    FROM pull_requests
    WHERE merged_at IS NOT NULL
      AND merge_commit_sha IS NOT NULL
      AND first_commit_at IS NOT NULL
)
SELECT repo, sha, min(first_commit_at) AS first_commit_at
FROM merged_prs
GROUP BY repo, sha;
