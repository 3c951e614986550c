-- Throughput: deployment frequency and change lead time.
-- Only successful deployments count here (a failed attempt shipped nothing; the stability family
-- counts failed attempts for the change failure rate). The baseline (first ever) deployment of a
-- service+environment counts as a deployment, but its changes give no lead times.
-- fact: deployment_facts
-- time: deployed_at
-- note: deployments, deployment_days and lead time count successful deployments only
-- note: baseline_deployments are the first deployment ever seen of a service+environment: they count as deployments, but their changes (baseline_changes) predate what was observed and are excluded from lead time
-- note: excluded_negative_lead_times counts changes whose start is after their deployment; they are left out of lead time
-- zero: deployments, deployment_days, deployments_per_week, changes, excluded_negative_lead_times, baseline_deployments, baseline_changes
-- window_changes: the engine's change_lead_times rows of the deployments in the window, computed once
-- per window for this family and the PR breakdown.
WITH successful_deployments AS (
    SELECT * FROM scoped WHERE status = 'success'
),
deployment_change_lead_times AS (
    SELECT {keys:d},
           d.id,
           d.deployed_day,
           d.is_baseline,
           l.sha,
           l.lead_hours,
           l.is_negative,
           l.counts_for_lead_time
    FROM successful_deployments d
    LEFT JOIN window_changes l ON l.deployment_id = d.id
)
SELECT {keys},
       count(DISTINCT id) AS deployments,
       count(DISTINCT deployed_day) AS deployment_days,
       count(DISTINCT id) * 7.0 / period_days AS deployments_per_week,
       count(sha) AS changes,
       median(lead_hours) FILTER (WHERE counts_for_lead_time) AS lead_time_median_hours,
       quantile_cont(lead_hours, 0.9) FILTER (WHERE counts_for_lead_time) AS lead_time_p90_hours,
       count(sha) FILTER (WHERE is_negative AND NOT is_baseline) AS excluded_negative_lead_times,
       count(DISTINCT id) FILTER (WHERE is_baseline) AS baseline_deployments,
       count(sha) FILTER (WHERE is_baseline) AS baseline_changes
FROM deployment_change_lead_times
GROUP BY {keys};
