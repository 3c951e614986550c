-- Per-change audit (`gitops-dora changes`, and the dashboard's drill-down): one row per change a
-- deployment shipped, straight from the lead-time views the metrics use (change_lead_times,
-- change_pull_requests), so the median of the counted rows over a window is the metrics'
-- lead_time_median_hours for that window.
--   start_source  which time started the change: 'author' or 'committer' (the commit's own time,
--                 per --lead-time-start / deployments.lead_time_start) or 'pr_first_commit' (the
--                 change is a merged PR's merge commit); NULL when the commit was never collected
--   outcome       why the change counts for lead time or not, first rule that applies:
--                   baseline           the first deployment ever seen of the service+environment
--                   failed_deployment  the deployment did not succeed (throughput counts successes)
--                   no_start           the commit is not in the store, so it has no start time
--                   negative           the start is after the deployment (excluded_negative_lead_times)
--                   counted            in lead_time_median_hours and lead_time_p90_hours
-- {where} is replaced by the caller with a filter over the alias l (values bound as parameters).
SELECT l.deployment_id,
       l.service,
       l.team,
       l.environment,
       l.deployed_at,
       l.status AS deployment_status,
       l.repo,
       l.sha,
       c.subject,
       c.author_time AS author_at,
       c.committer_time AS committer_at,
       p.pr_number,
       s.first_commit_at AS pr_first_commit_at,
       l.start_at,
       l.start_source,
       l.lead_hours,
       CASE
           WHEN l.is_baseline THEN 'baseline'
           WHEN l.status <> 'success' THEN 'failed_deployment'
           WHEN l.start_at IS NULL THEN 'no_start'
           WHEN l.is_negative THEN 'negative'
           ELSE 'counted'
       END AS outcome,
       (l.status = 'success' AND l.counts_for_lead_time) AS counted
FROM change_lead_times l
LEFT JOIN commits c ON c.repo = l.repo AND c.sha = l.sha
LEFT JOIN change_pull_requests p ON p.repo = l.repo AND p.sha = l.sha
LEFT JOIN pr_change_starts s ON s.repo = l.repo AND s.sha = l.sha
WHERE {where}
ORDER BY l.deployed_at, l.deployment_id, l.repo, l.start_at NULLS LAST, l.sha
