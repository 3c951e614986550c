-- One row per incident with the ONE deployment it counts against, and the rule that chose it:
--   1. root_cause: the incident names a deployment id, or a commit/revision; a commit or revision
--      goes to the deployment that first shipped it, preferring the incident's own service and
--      environment, then its service, then any (earliest deployed_at, then smallest id);
--   2. gap: otherwise the latest successful deployment of the same service and environment at or
--      before created_at, at most max_attribution_gap earlier (session variable
--      gitops_dora_max_attribution_gap_hours, set by the engine from the config; default 7 days);
--   3. unattributed: otherwise. The incident is still counted.
-- A root cause that matches nothing falls through to rule 2 and is flagged root_cause_unmatched.
CREATE OR REPLACE TEMP VIEW incident_attribution AS
WITH settings AS (
    SELECT coalesce(CAST(getvariable('gitops_dora_max_attribution_gap_hours') AS DOUBLE), 168.0) AS gap_hours
),
incidents_with_cause AS (
    SELECT i.*,
           lower(trim(i.root_cause)) AS cause,
           left(lower(trim(i.root_cause)), 7) AS cause_prefix
    FROM incidents i
),
named_deployments AS (
    -- rule 1 by deployment id
    SELECT i.id AS incident_id, d.id AS deployment_id, d.deployed_at, 0 AS preference
    FROM incidents_with_cause i
    JOIN deployments d ON d.id = trim(i.root_cause)
),
cause_commits AS (
    -- a 7+ hex root cause matched as a (possibly abbreviated) sha; the 7-character prefix makes it an equi-join
    -- (substring(sha, 1, 7) is left(sha, 7), both counting characters, and cost 0.055 against
    -- 0.066 s of CPU over the bench store's 970k changes)
    SELECT i.id AS incident_id, dc.deployment_id
    FROM incidents_with_cause i
    JOIN deployment_changes dc
      ON length(i.cause) >= 7 AND substring(dc.sha, 1, 7) = i.cause_prefix AND starts_with(dc.sha, i.cause)
    UNION
    -- a tag name: the commit the tag points at
    SELECT i.id, dc.deployment_id
    FROM incidents_with_cause i
    JOIN tags t ON t.name = trim(i.root_cause)
    JOIN deployment_changes dc ON dc.repo = t.repo AND dc.sha = t.sha
    UNION
    -- a revision as the deployment itself recorded it (config-repo commit, image tag, chart version)
    SELECT i.id, d.id
    FROM incidents_with_cause i
    JOIN deployments d ON d.raw_revision = trim(i.root_cause)
    UNION
    SELECT i.id, d.id
    FROM incidents_with_cause i
    JOIN deployments d ON d.source_ref = trim(i.root_cause)
    UNION
    SELECT i.id, d.id
    FROM incidents_with_cause i
    JOIN deployments d
      ON length(i.cause) >= 7 AND left(d.revision, 7) = i.cause_prefix AND starts_with(d.revision, i.cause)
),
shipping_deployments AS (
    SELECT c.incident_id,
           d.id AS deployment_id,
           d.deployed_at,
           CASE
               WHEN d.service = i.service AND d.environment = i.environment THEN 1
               WHEN d.service = i.service THEN 2
               ELSE 3
           END AS preference
    FROM cause_commits c
    JOIN deployments d ON d.id = c.deployment_id
    JOIN incidents i ON i.id = c.incident_id
),
root_cause_choice AS (
    SELECT incident_id, deployment_id
    FROM (SELECT * FROM named_deployments UNION ALL SELECT * FROM shipping_deployments)
    QUALIFY row_number() OVER (PARTITION BY incident_id ORDER BY preference, deployed_at, deployment_id) = 1
),
successful_deployments AS (
    -- one row per (service, environment, instant): equal times keep the largest id, so the choice is stable
    SELECT service, environment, deployed_at, id
    FROM deployments
    WHERE status = 'success'
    QUALIFY row_number() OVER (PARTITION BY service, environment, deployed_at ORDER BY id DESC) = 1
),
latest_before_incident AS (
    SELECT i.id AS incident_id, s.id AS deployment_id, s.deployed_at
    FROM incidents i
    ASOF JOIN successful_deployments s
      ON s.service = i.service AND s.environment = i.environment AND i.created_at >= s.deployed_at
),
gap_choice AS (
    SELECT l.incident_id, l.deployment_id
    FROM latest_before_incident l
    JOIN incidents i ON i.id = l.incident_id
    CROSS JOIN settings s
    WHERE (epoch_seconds(i.created_at) - epoch_seconds(l.deployed_at)) / 3600.0 <= s.gap_hours
),
attributed AS (
    SELECT i.*,
           coalesce(r.deployment_id, g.deployment_id) AS deployment_id,
           CASE
               WHEN r.deployment_id IS NOT NULL THEN 'root_cause'
               WHEN g.deployment_id IS NOT NULL THEN 'gap'
               ELSE 'unattributed'
           END AS attribution_rule,
           i.root_cause IS NOT NULL AND trim(i.root_cause) <> '' AND r.deployment_id IS NULL
               AS root_cause_unmatched
    FROM incidents i
    LEFT JOIN root_cause_choice r ON r.incident_id = i.id
    LEFT JOIN gap_choice g ON g.incident_id = i.id
)
SELECT a.id AS incident_id,
       a.service,
       s.team,
       a.environment,
       d.repository,
       a.created_at,
       a.resolved_at,
       a.resolved_at IS NULL AS is_open,
       CASE WHEN a.resolved_at IS NOT NULL
            THEN (epoch_seconds(a.resolved_at) - epoch_seconds(a.created_at)) / 3600.0 END AS restore_hours,
       a.title,
       a.root_cause,
       a.root_cause_unmatched,
       a.source,
       a.url,
       a.labels,
       a.attribution_rule,
       a.deployment_id,
       d.service AS deployment_service,
       d.environment AS deployment_environment,
       d.deployed_at AS deployment_deployed_at,
       d.revision AS deployment_revision
FROM attributed a
LEFT JOIN deployments d ON d.id = a.deployment_id
LEFT JOIN services s ON s.name = a.service;
