-- Merged pull requests of the assessed repositories in the window before the assessed moment, and
-- whether each had a review before it merged.
-- Parameters: $repos (labels; a PR repo matches "label" or "owner/label"), $since, $as_of.
WITH merged_in_window AS (
    SELECT repo, number, url, first_review_at, merged_at
    FROM pull_requests
    WHERE merged_at IS NOT NULL
      AND merged_at > $since AND merged_at <= $as_of
      AND (list_contains($repos, repo) OR list_contains($repos, split_part(repo, '/', -1)))
),
review_state AS (
    SELECT repo, number, url,
           first_review_at IS NOT NULL AND first_review_at <= merged_at AS reviewed_before_merge
    FROM merged_in_window
)
SELECT repo,
       count(*)                                                       AS merged,
       count(*) FILTER (WHERE reviewed_before_merge)                   AS reviewed,
       list(number ORDER BY number) FILTER (WHERE NOT reviewed_before_merge) AS unreviewed
FROM review_state
GROUP BY repo
ORDER BY repo
