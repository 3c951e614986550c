-- Pull-request breakdown of lead time: medians of the coding, pickup, review and deploy phases
-- over the merged PRs shipped by successful, non-baseline deployments in the window (each PR once
-- per deployment), plus how many counted changes came with and without a PR.
-- fact: pr_phase_facts
-- time: deployed_at
-- zero: prs_deployed, changes_with_pr, changes_without_pr
-- note: PR phases: coding = first commit -> opened, pickup = opened -> first review, review = first review -> merge, deploy = merge -> deployment (medians over deployed PRs); changes without a PR count for lead time with no breakdown
WITH counted_changes AS (
    SELECT * FROM scoped WHERE status = 'success' AND counts_for_lead_time
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
