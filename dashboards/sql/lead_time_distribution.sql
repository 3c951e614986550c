-- Every change lead time that the lead-time median counts (change_lead_times.counts_for_lead_time:
-- not a baseline deployment, not negative), on successful deployments in the window.
WITH scoped_changes AS (
    SELECT l.service, l.environment, l.deployment_id, l.sha, l.lead_hours, l.deployed_at
    FROM change_lead_times l
    JOIN deployments d ON d.id = l.deployment_id
    WHERE d.status = 'success' AND l.counts_for_lead_time AND {filter}
)
SELECT service, environment, deployment_id, sha, deployed_at, lead_hours
FROM scoped_changes
ORDER BY deployed_at;
