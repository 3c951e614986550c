-- The merged PRs behind the PR lead time breakdown: pr_lead_times keeps one representative row per
-- PR and deployment with its coding, pickup, review and deploy hours; the same rows the engine's
-- pr_*_median_hours are medians of (successful deployments, changes that count for lead time).
WITH deployed_prs AS (
    SELECT p.*
    FROM pr_lead_times p
    JOIN deployments d ON d.id = p.deployment_id
    WHERE p.is_pr_representative AND p.status = 'success' AND p.counts_for_lead_time AND {filter}
)
SELECT p.repo, p.pr_number AS number, pr.title, pr.url, p.deployment_id, p.service, p.environment,
       p.deployed_at, p.coding_hours, p.pickup_hours, p.review_hours, p.deploy_hours
FROM deployed_prs p
LEFT JOIN pull_requests pr ON pr.repo = p.repo AND pr.number = p.pr_number
ORDER BY p.deployed_at DESC, p.repo, p.pr_number;
