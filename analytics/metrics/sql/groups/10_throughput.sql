-- Throughput: deployment frequency and change lead time.
-- Only successful deployments count here (a failed attempt shipped nothing; the stability family
-- counts failed attempts for the change failure rate). The baseline (first ever) deployment of a
-- service+environment counts as a deployment, but its changes give no lead times.
-- fact: deployment_baselines
-- time: deployed_at
-- note: deployments, deployment_days and lead time count successful deployments only
-- note: a redeploy (the revision already running, deployed again) counts as a deployment with 0 new changes unless deployments.count_redeploys is false
-- note: baseline_deployments are the first deployment ever seen of a service+environment: they count as deployments, but their changes (baseline_changes) predate what was observed and are excluded from lead time
-- note: excluded_negative_lead_times counts changes whose start is after their deployment; they are left out of lead time
-- zero: deployments, deployment_days, deployments_per_week, changes, excluded_negative_lead_times, baseline_deployments, baseline_changes
-- window_changes: the engine's change_lead_times rows of the deployments in the window, computed once
-- per window for this family and the PR breakdown. Deployments and their changes are stacked as rows
-- of one table (a deployment row, then a row per change) so that nothing is counted DISTINCT over
-- the million-change side.
WITH successful_deployments AS (
    -- counts_as_deployment: successful, and not a redeploy when deployments.count_redeploys is false
    SELECT * FROM scoped WHERE counts_as_deployment
),
measured_rows AS (
    SELECT {group_keys},
           period_days,
           true AS is_deployment_row,
           deployed_day,
           is_baseline,
           NULL::VARCHAR AS sha,
           NULL::DOUBLE AS lead_hours,
           false AS is_negative,
           false AS counts_for_lead_time
    FROM successful_deployments
    UNION ALL
    SELECT {group_keys:d},
           d.period_days,
           false,
           NULL::DATE,
           l.is_baseline,
           l.sha,
           l.lead_hours,
           l.is_negative,
           l.counts_for_lead_time
    FROM successful_deployments d
    JOIN window_changes l ON l.deployment_id = d.id
),
group_counts AS (
    -- grouped by dimensions and period_index only (cheap keys); period_days depends on the period
    SELECT {group_keys},
           any_value(period_days) AS period_days,
           count(*) FILTER (WHERE is_deployment_row) AS deployments,
           count(DISTINCT deployed_day) AS deployment_days,
           count(sha) AS changes,
           -- median (interpolated, as median() is) and p90 from one sort of the lead times
           quantile_cont(lead_hours, [0.5, 0.9]) FILTER (WHERE counts_for_lead_time) AS lead_quantiles,
           count(sha) FILTER (WHERE is_negative AND NOT is_baseline) AS excluded_negative_lead_times,
           count(*) FILTER (WHERE is_deployment_row AND is_baseline) AS baseline_deployments,
           count(sha) FILTER (WHERE is_baseline) AS baseline_changes
    FROM measured_rows
    GROUP BY {group_keys}
)
SELECT {group_keys},
       deployments,
       deployment_days,
       deployments * 7.0 / period_days AS deployments_per_week,
       changes,
       lead_quantiles[1] AS lead_time_median_hours,
       lead_quantiles[2] AS lead_time_p90_hours,
       excluded_negative_lead_times,
       baseline_deployments,
       baseline_changes
FROM group_counts;
