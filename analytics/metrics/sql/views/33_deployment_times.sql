-- One row per deployment with only its dimensions, time and status: the light fact for families
-- that need no change counts (deployment frequency ratings), so scoping them stays a plain scan.
CREATE OR REPLACE TEMP VIEW deployment_times AS
SELECT d.id,
       d.rowid AS deployment_row,  -- as in deployment_baselines: what window_changes is keyed by
       d.service,
       s.team,
       d.environment,
       d.repository,
       d.deployed_at,
       utc_day(d.deployed_at) AS deployed_day,
       d.status,
       d.status = 'success' AND (coalesce(CAST(getvariable('gitops_dora_count_redeploys') AS BOOLEAN), true)
                                 OR NOT coalesce(r.is_redeploy, false)) AS counts_as_deployment
FROM deployments d
LEFT JOIN services s ON s.name = d.service
LEFT JOIN deployment_redeploys r
    ON r.id = d.id AND NOT coalesce(CAST(getvariable('gitops_dora_count_redeploys') AS BOOLEAN), true);
