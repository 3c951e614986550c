-- Pull-request breakdown of lead time: medians of the coding, pickup, review and deploy phases
-- over the merged PRs shipped by successful, non-baseline deployments in the window (each PR once
-- per deployment), plus how many counted changes came with and without a PR.
-- fact: deployment_facts
-- time: deployed_at
-- zero: prs_deployed, changes_with_pr, changes_without_pr
-- note: PR phases: coding = first commit -> opened, pickup = opened -> first review, review = first review -> merge, deploy = merge -> deployment (medians over deployed PRs); changes without a PR count for lead time with no breakdown
-- Changes come from window_changes (the engine's change_lead_times rows for the window, shared with
-- the throughput family); PR rows are joined from change_pull_requests, so with no PRs the joins
-- are empty and changes_without_pr is a plain count. This is the view pr_lead_times restricted to
-- the window (the dashboard's drill-down reads that view); both must define the same thing.
WITH successful_changes AS (
    SELECT {keys:d}, d.deployed_at, l.deployment_id, l.repo, l.sha, l.counts_for_lead_time
    FROM scoped d
    JOIN window_changes l ON l.deployment_id = d.id
    WHERE d.status = 'success'
),
pr_changes AS (
    -- the successful changes that came with a merged PR
    SELECT c.deployment_id, c.repo, c.sha, p.pr_number, p.pr_merged_at, p.coding_hours, p.pickup_hours,
           p.review_hours
    FROM successful_changes c
    JOIN change_pull_requests p ON p.repo = c.repo AND p.sha = c.sha
),
pr_representatives AS (
    -- a PR shipped with several changes is measured once per deployment: by its smallest sha
    SELECT deployment_id, repo, pr_number, min(sha) AS sha
    FROM pr_changes
    GROUP BY deployment_id, repo, pr_number
),
counted_changes AS (
    SELECT c.*,
           p.pr_number,
           p.coding_hours,
           p.pickup_hours,
           p.review_hours,
           phase_hours(c.deployed_at, p.pr_merged_at) AS deploy_hours,
           r.sha IS NOT NULL AS is_pr_representative
    FROM successful_changes c
    LEFT JOIN pr_changes p ON p.deployment_id = c.deployment_id AND p.repo = c.repo AND p.sha = c.sha
    LEFT JOIN pr_representatives r ON r.deployment_id = c.deployment_id AND r.repo = c.repo AND r.sha = c.sha
    WHERE c.counts_for_lead_time
)
SELECT {keys},
       count(*) FILTER (WHERE is_pr_representative) AS prs_deployed,
       median(coding_hours) FILTER (WHERE is_pr_representative) AS pr_coding_median_hours,
       median(pickup_hours) FILTER (WHERE is_pr_representative) AS pr_pickup_median_hours,
       median(review_hours) FILTER (WHERE is_pr_representative) AS pr_review_median_hours,
       median(deploy_hours) FILTER (WHERE is_pr_representative) AS pr_deploy_median_hours,
       count(*) FILTER (WHERE pr_number IS NOT NULL) AS changes_with_pr,
       count(*) FILTER (WHERE pr_number IS NULL) AS changes_without_pr
FROM counted_changes
GROUP BY {keys};
