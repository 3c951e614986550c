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
-- per window for this family and the PR breakdown. The deployment counts (one DISTINCT over the
-- successful deployments) and the change counts and lead-time quantiles (over their changes, with
-- no DISTINCT) are aggregated apart and then put side by side per group: a DISTINCT aggregate over
-- the million-change side would hash every change again. Every change belongs to a counted
-- deployment, so each group with changes has a deployment row too.
WITH successful_deployments AS (
    -- counts_as_deployment: successful, and not a redeploy when deployments.count_redeploys is false
    SELECT * FROM scoped WHERE counts_as_deployment
),
deployment_counts AS (
    SELECT {group_keys},
           any_value(period_days) AS period_days,
           count(*) AS deployments,
           count(DISTINCT deployed_day) AS deployment_days,
           count(*) FILTER (WHERE is_baseline) AS baseline_deployments
    FROM successful_deployments
    GROUP BY {group_keys}
),
change_counts AS (
    SELECT {group_keys:d},
           count(*) AS changes,
           -- median (interpolated, as median() is) and p90 from one sort of the lead times
           quantile_cont(l.lead_hours, [0.5, 0.9]) FILTER (WHERE l.counts_for_lead_time) AS lead_quantiles,
           count(*) FILTER (WHERE l.is_negative AND NOT l.is_baseline) AS excluded_negative_lead_times,
           count(*) FILTER (WHERE l.is_baseline) AS baseline_changes
    FROM successful_deployments d
    JOIN window_changes l ON l.deployment_row = d.deployment_row
    GROUP BY {group_keys:d}
),
partial_counts AS (
    -- both aggregates as rows of one table, grouped again below: a group's dimensions may be NULL
    -- (a service without a team), which GROUP BY matches and a join on the keys would not
    SELECT {group_keys}, period_days, deployments, deployment_days, baseline_deployments,
           0 AS changes, NULL::DOUBLE[] AS lead_quantiles, 0 AS excluded_negative_lead_times, 0 AS baseline_changes
    FROM deployment_counts
    UNION ALL
    SELECT {group_keys}, NULL, 0, 0, 0, changes, lead_quantiles, excluded_negative_lead_times, baseline_changes
    FROM change_counts
),
group_counts AS (
    -- grouped by dimensions and period_index only (cheap keys); period_days depends on the period.
    -- Each value comes from one of the two rows (the other holds 0 or NULL)
    SELECT {group_keys},
           any_value(period_days) AS period_days,
           max(deployments) AS deployments,
           max(deployment_days) AS deployment_days,
           max(changes) AS changes,
           any_value(lead_quantiles) AS lead_quantiles,
           max(excluded_negative_lead_times) AS excluded_negative_lead_times,
           max(baseline_deployments) AS baseline_deployments,
           max(baseline_changes) AS baseline_changes
    FROM partial_counts
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
