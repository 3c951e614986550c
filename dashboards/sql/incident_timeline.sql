-- Incidents created in the window with the deployment each counts against (incident_attribution).
-- The window applies to created_at; the slicers apply to the incident's own service/environment.
SELECT incident_id AS id, service, environment, created_at, resolved_at, title, attribution_rule,
       deployment_id, deployment_deployed_at, restore_hours, url
FROM incident_attribution
WHERE created_at >= CAST($since AS TIMESTAMPTZ) AND created_at < CAST($until AS TIMESTAMPTZ)
  AND ($service IS NULL OR service = $service)
  AND ($environment IS NULL OR environment = $environment)
  AND ($team IS NULL OR service IN (SELECT name FROM services WHERE team = $team))
ORDER BY created_at;
