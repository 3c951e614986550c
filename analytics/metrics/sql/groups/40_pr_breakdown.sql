-- Pull-request breakdown of lead time: medians of the coding, pickup, review and deploy phases
-- over the merged PRs shipped by successful, non-baseline deployments in the window (each PR once
-- per deployment), plus how many counted changes came with and without a PR.
-- fact: deployment_times
-- time: deployed_at
-- zero: prs_deployed, changes_with_pr, changes_without_pr
-- note: PR phases: coding = first commit -> opened, pickup = opened -> first review, review = first review -> merge, deploy = merge -> deployment (medians over deployed PRs); changes without a PR count for lead time with no breakdown
-- Changes come from window_changes (the engine's change_lead_times rows for the window, shared with
-- the throughput family). change_pull_requests gives at most one PR per change; only the changes
-- that came with a PR are joined to it and measured, and the changes are counted apart, so the
-- million-change side is never the hash table of a join (with no PRs the PR side is empty). This is
-- the view pr_lead_times restricted to the window (the dashboard's drill-down reads that view); both
-- must define the same thing.
WITH pr_window_changes AS (
    -- the window's counted changes that came with a merged PR (a plain filter on window_changes:
    -- joined to the PR side, DuckDB built its hash table over the million window_changes)
    SELECT deployment_row, change_row
    FROM window_changes
    WHERE in_pull_request AND counts_for_lead_time
),
pr_changes AS (
    -- those changes with their repo and sha (deployment_changes by rowid) and their PR; a PR
    -- shipped with several changes is measured once per deployment: by its smallest sha
    SELECT {group_keys:d},
           l.deployment_row,
           p.coding_hours,
           p.pickup_hours,
           p.review_hours,
           phase_hours(d.deployed_at, p.pr_merged_at) AS deploy_hours,
           -- per team too: a service in several teams has a scoped row per team, and each team
           -- counts the PR (without d.team the one representative went to an arbitrary team)
           row_number() OVER (PARTITION BY l.deployment_row, d.team, dc.repo, p.pr_number ORDER BY dc.sha) = 1
               AS is_pr_representative
    FROM pr_window_changes l
    JOIN deployment_changes dc ON dc.rowid = l.change_row
    JOIN change_pull_requests p ON p.repo = dc.repo AND p.sha = dc.sha
    JOIN scoped d ON d.deployment_row = l.deployment_row
    WHERE d.status = 'success'
),
counted_changes AS (
    -- how many counted changes each deployment shipped: one pass over the changes, so the
    -- deployments side (not the million changes) is joined to scoped
    SELECT deployment_row, count(*) AS counted
    FROM window_changes
    WHERE counts_for_lead_time
    GROUP BY deployment_row
),
measured_rows AS (
    -- every successful deployment with its counted changes, then every change with a PR again
    -- with its phases
    SELECT {group_keys:d}, c.counted, 0 AS with_pr, NULL::BOOLEAN AS is_pr_representative,
           NULL::DOUBLE AS coding_hours, NULL::DOUBLE AS pickup_hours, NULL::DOUBLE AS review_hours,
           NULL::DOUBLE AS deploy_hours
    FROM scoped d
    JOIN counted_changes c ON c.deployment_row = d.deployment_row
    WHERE d.status = 'success'
    UNION ALL
    SELECT {group_keys}, 0, 1, is_pr_representative, coding_hours, pickup_hours, review_hours, deploy_hours
    FROM pr_changes
)
SELECT {group_keys},
       count(*) FILTER (WHERE is_pr_representative) AS prs_deployed,
       median(coding_hours) FILTER (WHERE is_pr_representative) AS pr_coding_median_hours,
       median(pickup_hours) FILTER (WHERE is_pr_representative) AS pr_pickup_median_hours,
       median(review_hours) FILTER (WHERE is_pr_representative) AS pr_review_median_hours,
       median(deploy_hours) FILTER (WHERE is_pr_representative) AS pr_deploy_median_hours,
       CAST(sum(with_pr) AS BIGINT) AS changes_with_pr,
       CAST(sum(counted) - sum(with_pr) AS BIGINT) AS changes_without_pr
FROM measured_rows
GROUP BY {group_keys};
