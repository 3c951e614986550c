-- PR lead time split into its four phases, per merged PR that a deployment in the window shipped:
--   coding = first commit -> PR opened, pickup = opened -> first review,
--   review = first review (or opened when never reviewed) -> merged, deploy = merged -> first deployment.
-- A phase whose end precedes its start (clock skew, back-dated commits) is left out, not clipped.
WITH merged_prs AS (
    SELECT repo, number, title, url, created_at, first_commit_at, first_review_at, merged_at,
           merge_commit_sha
    FROM pull_requests
    WHERE merged_at IS NOT NULL AND merge_commit_sha IS NOT NULL
),
first_shipping_deployments AS (
    SELECT dc.repo, dc.sha, min(d.deployed_at) AS deployed_at, arg_min(d.id, d.deployed_at) AS deployment_id
    FROM deployment_changes dc
    JOIN deployments d ON d.id = dc.deployment_id
    WHERE d.status = 'success' AND {filter}
    GROUP BY dc.repo, dc.sha
),
pr_phases AS (
    SELECT p.repo, p.number, p.title, p.url, f.deployment_id,
           (epoch(p.created_at) - epoch(p.first_commit_at)) / 3600.0 AS coding_hours,
           (epoch(p.first_review_at) - epoch(p.created_at)) / 3600.0 AS pickup_hours,
           (epoch(p.merged_at) - epoch(coalesce(p.first_review_at, p.created_at))) / 3600.0 AS review_hours,
           (epoch(f.deployed_at) - epoch(p.merged_at)) / 3600.0 AS deploy_hours
    FROM merged_prs p
    JOIN first_shipping_deployments f ON f.repo = p.repo AND f.sha = p.merge_commit_sha
)
SELECT repo, number, title, url, deployment_id,
       CASE WHEN coding_hours >= 0 THEN coding_hours END AS coding_hours,
       CASE WHEN pickup_hours >= 0 THEN pickup_hours END AS pickup_hours,
       CASE WHEN review_hours >= 0 THEN review_hours END AS review_hours,
       CASE WHEN deploy_hours >= 0 THEN deploy_hours END AS deploy_hours
FROM pr_phases
ORDER BY repo, number;
