-- Failed deployments in the window with every signal that makes them failed (failure_signals),
-- one row per (deployment, signal), for the Stability page's "why failed" table.
WITH scoped_deployments AS (
    SELECT d.id, d.service, d.environment, d.deployed_at, d.status FROM deployments d WHERE {filter}
)
SELECT s.id AS deployment_id, s.service, s.environment, s.deployed_at, f.signal,
       array_to_string(f.evidence, ', ') AS evidence, f.signal_at, f.recovered_at, f.restored_by,
       (epoch(f.recovered_at) - epoch(s.deployed_at)) / 3600.0 AS recovery_hours
FROM scoped_deployments s
JOIN failure_signals f ON f.deployment_id = s.id
ORDER BY s.deployed_at DESC, s.id, f.signal;
