-- Deployments in the window with their dimensions and change counts, newest first.
WITH scoped_deployments AS (
    SELECT d.* FROM deployments d WHERE {filter}
),
change_counts AS (
    SELECT deployment_id, count(*) AS changes FROM deployment_changes GROUP BY deployment_id
)
SELECT s.id, s.service, sv.team, s.environment, s.deployed_at, s.status, s.revision, s.source,
       s.source_ref, s.is_rollback, coalesce(c.changes, 0) AS changes, s.repository
FROM scoped_deployments s
LEFT JOIN services sv ON sv.name = s.service
LEFT JOIN change_counts c ON c.deployment_id = s.id
ORDER BY s.deployed_at DESC, s.id;
