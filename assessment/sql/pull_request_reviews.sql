-- Merged pull requests of the assessed repositories in the window before each assessed moment,
-- and whether each had a review before it merged.
-- Parameters: $repos (labels; a PR repo matches "label" or "owner/label"), $moments, $window
-- (how far back from each moment merges count).
WITH assessed_moments AS (
    SELECT DISTINCT unnest($moments::TIMESTAMPTZ[]) AS as_of
),
merged_in_window AS (
    SELECT m.as_of, p.repo, p.number, p.url, p.first_review_at, p.merged_at
    FROM pull_requests p
    JOIN assessed_moments m ON p.merged_at > m.as_of - $window::INTERVAL AND p.merged_at <= m.as_of
    WHERE p.merged_at IS NOT NULL
      AND (list_contains($repos, p.repo) OR list_contains($repos, split_part(p.repo, '/', -1)))
),
review_state AS (
    SELECT as_of, repo, number, url,
           first_review_at IS NOT NULL AND first_review_at <= merged_at AS reviewed_before_merge
    FROM merged_in_window
)
SELECT as_of, repo,
       count(*)                                                       AS merged,
       count(*) FILTER (WHERE reviewed_before_merge)                   AS reviewed,
       list(number ORDER BY number) FILTER (WHERE NOT reviewed_before_merge) AS unreviewed
FROM review_state
GROUP BY as_of, repo
ORDER BY as_of, repo
