-- One row per deployment with the dimensions every metric groups by (service, team, environment,
-- repository) and the facts the metric families need. The first deployment ever seen for a
-- service+environment is the baseline: its commits predate what was observed, so it contributes
-- no lead times (it is still a deployment, and reported as a baseline).
-- deployment_baselines is the same without the change counts, for views that join changes anyway.
CREATE OR REPLACE TEMP VIEW deployment_baselines AS
WITH first_deployments AS (
    -- each service+environment's first deployment (earliest deployed_at, then smallest id, NULLs
    -- last as in ORDER BY): one hash aggregate into a row per scope, where a row_number() window
    -- sorted all 100k deployments within their scopes (about 0.025 s of CPU each time the view is
    -- read, twice per report). It returns the row, not the id: arg_min skips a NULL argument, and
    -- an id stored twice in a scope would mark both rows
    SELECT arg_min(rowid, (deployed_at, id)) AS first_row
    FROM deployments
    GROUP BY service, environment
),
ordered_deployments AS (
    SELECT d.*,
           d.rowid AS deployment_row,
           f.first_row IS NOT NULL AS is_first
    FROM deployments d
    LEFT JOIN first_deployments f ON f.first_row = d.rowid
)
SELECT o.id,
       -- the deployment's row (rowid) in deployments: window_changes keys its changes by this
       -- integer instead of the id string (joined to scoped.deployment_row)
       o.deployment_row,
       o.service,
       s.team,
       o.environment,
       -- an environment missing from the config counts as production only by its name
       coalesce(e.is_production, o.environment IN ('production', 'prod')) AS is_production,
       o.repository,
       o.revision,
       o.started_at,
       o.deployed_at,
       utc_day(o.deployed_at) AS deployed_day,
       o.status,
       o.source,
       o.source_ref,
       o.is_rollback,
       o.rollback_target,
       o.is_first AS is_baseline,
       coalesce(r.is_redeploy, false) AS is_redeploy,
       -- what deployment counts and frequency count (07_redeploys.sql: redeploys unless configured)
       o.status = 'success' AND (coalesce(CAST(getvariable('gitops_dora_count_redeploys') AS BOOLEAN), true)
                                 OR NOT coalesce(r.is_redeploy, false)) AS counts_as_deployment
FROM ordered_deployments o
LEFT JOIN services s ON s.name = o.service
LEFT JOIN environments e ON e.name = o.environment
LEFT JOIN deployment_redeploys r
    ON r.id = o.id AND NOT coalesce(CAST(getvariable('gitops_dora_count_redeploys') AS BOOLEAN), true);

CREATE OR REPLACE TEMP VIEW deployment_facts AS
WITH change_counts AS (
    SELECT deployment_id, count(*) AS changes
    FROM deployment_changes
    GROUP BY deployment_id
)
SELECT b.*, coalesce(c.changes, 0) AS changes
FROM deployment_baselines b
LEFT JOIN change_counts c ON c.deployment_id = b.id;
