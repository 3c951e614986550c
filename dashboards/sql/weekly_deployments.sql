-- Successful deployments per ISO week (Monday, UTC) by service and environment, for the Throughput
-- chart. Only successful deployments count, as in the throughput metric family.
WITH scoped_deployments AS (
    SELECT d.service, d.environment, d.deployed_at
    FROM deployments d
    WHERE d.status = 'success' AND {filter}
),
deployment_weeks AS (
    SELECT service,
           environment,
           CAST(date_trunc('week', timezone('UTC', deployed_at)) AS DATE) AS week
    FROM scoped_deployments
)
SELECT week, service, environment, count(*) AS deployments
FROM deployment_weeks
GROUP BY ALL
ORDER BY week, service, environment;
