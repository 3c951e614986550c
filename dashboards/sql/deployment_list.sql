-- Deployments in the window with their dimensions, change counts and the failure signals that make
-- them failed deployments (failure_signals), newest first.
WITH scoped_deployments AS (
    SELECT d.* FROM deployments d WHERE {filter}
),
change_counts AS (
    SELECT deployment_id, count(*) AS changes FROM deployment_changes GROUP BY deployment_id
),
deployment_signals AS (
    SELECT deployment_id, string_agg(signal, ', ' ORDER BY signal) AS failed_because
    FROM failure_signals GROUP BY deployment_id
)
SELECT s.id, s.service, sv.team, s.environment, s.deployed_at, s.status,
       coalesce(f.failed_because, '') AS failed_because,
       CASE WHEN f.failed_because IS NULL THEN 'ok' ELSE 'failed' END AS outcome,
       s.revision, s.source, s.source_ref, s.is_rollback, coalesce(c.changes, 0) AS changes, s.repository
FROM scoped_deployments s
LEFT JOIN services sv ON sv.name = s.service
LEFT JOIN change_counts c ON c.deployment_id = s.id
LEFT JOIN deployment_signals f ON f.deployment_id = s.id
ORDER BY s.deployed_at DESC, s.id;
