-- Stability: change failure rate, failed deployment recovery time and rework rate, over the
-- deployments whose deployment time lies in the window.
-- Denominator: every deployment in the window counted once by id, INCLUDING failed attempts
-- (status 'failed'): a failed rollout is itself a failed deployment, so leaving it out of the
-- denominator could push the rate above 1. Hence change_failure_rate = failed_deployments /
-- deployment_attempts <= 1 (failed_deployments counts a subset of the same ids).
-- fact: deployment_outcomes
-- time: deployed_at
-- zero: deployment_attempts, failed_deployments, unrecovered_failed_deployments, rework_deployments
-- note: change_failure_rate and rework_rate divide by deployment_attempts (successful deployments plus failed attempts in the window)
-- Each deployment lies in exactly one period (periods are half-open and tile the window), so
-- every row of scoped is one deployment counted once.
SELECT {group_keys},
       count(*) AS deployment_attempts,
       count(*) FILTER (WHERE is_failed) AS failed_deployments,
       count(*) FILTER (WHERE is_failed) / count(*) AS change_failure_rate,
       median(recovery_hours) FILTER (WHERE is_failed) AS failed_deployment_recovery_median_hours,
       quantile_cont(recovery_hours, 0.9) FILTER (WHERE is_failed) AS failed_deployment_recovery_p90_hours,
       count(*) FILTER (WHERE is_failed AND recovered_at IS NULL) AS unrecovered_failed_deployments,
       count(*) FILTER (WHERE is_rework) AS rework_deployments,
       count(*) FILTER (WHERE is_rework) / count(*) AS rework_rate
FROM scoped
GROUP BY {group_keys};
