-- The rows `gitops-dora incidents` prints: the listing columns of incident_attribution
-- (analytics/metrics/sql/views/30_incident_attribution.sql), computed with its rules but only for
-- what the listing shows, so a million incidents list in bounded memory (issue #16). Statements
-- split at the lines "-- statement":
--   1-3. rule 1 (root_cause) for the listed incidents that name a root cause, step by step into
--      TEMP tables: their real row counts (usually small) make them the build sides of the joins
--      with a million deployments or changes, and of the final join, where the view's estimates
--      (billions of rows) put the big tables there instead;
--   4. the listed incidents' creation times, from which analytics/listing cuts the list into
--      slices of a bounded number of rows;
--   5. one slice of the listed incidents (a range of created_at), with rule 2 (gap) as an ASOF
--      join of the slice's keys and the successful deployments that can be chosen for it
--      (deployed_at from the slice's start less the gap, to its end): each join holds a slice,
--      not the whole list.
-- The command's filter applies to the incidents first (SQL over id, service, team, environment,
-- created_at and is_open): one incident's attribution never depends on another incident.
-- tests/test_listing_incidents.py checks that every row equals the view's, so the two cannot
-- drift apart unnoticed.
CREATE OR REPLACE TEMP TABLE gd_listing_cause AS
SELECT id, service, environment, trim(root_cause) AS cause_text, lower(trim(root_cause)) AS cause,
       left(lower(trim(root_cause)), 7) AS cause_prefix
FROM (
    SELECT i.id, i.service, s.team, i.environment, i.created_at, i.resolved_at IS NULL AS is_open,
           i.root_cause
    FROM incidents i
    LEFT JOIN services s ON s.name = i.service
    WHERE i.root_cause IS NOT NULL
) AS incident
WHERE {where};
-- statement
CREATE OR REPLACE TEMP TABLE gd_listing_cause_deployments AS
-- a 7+ hex root cause matched as a (possibly abbreviated) sha
SELECT c.id AS incident_id, dc.deployment_id
FROM gd_listing_cause c
JOIN deployment_changes dc
  ON length(c.cause) >= 7 AND left(dc.sha, 7) = c.cause_prefix AND starts_with(dc.sha, c.cause)
UNION
-- a tag name: the commit the tag points at
SELECT c.id, dc.deployment_id
FROM gd_listing_cause c
JOIN tags t ON t.name = c.cause_text
JOIN deployment_changes dc ON dc.repo = t.repo AND dc.sha = t.sha
UNION
-- a revision as the deployment itself recorded it (config-repo commit, image tag, chart version)
SELECT c.id, d.id
FROM gd_listing_cause c
JOIN deployments d ON d.raw_revision = c.cause_text
UNION
SELECT c.id, d.id
FROM gd_listing_cause c
JOIN deployments d ON d.source_ref = c.cause_text
UNION
SELECT c.id, d.id
FROM gd_listing_cause c
JOIN deployments d
  ON length(c.cause) >= 7 AND left(d.revision, 7) = c.cause_prefix AND starts_with(d.revision, c.cause);
-- statement
CREATE OR REPLACE TEMP TABLE gd_listing_root_cause AS
WITH named_deployments AS (
    -- by deployment id
    SELECT c.id AS incident_id, d.id AS deployment_id, d.deployed_at, 0 AS preference
    FROM gd_listing_cause c
    JOIN deployments d ON d.id = c.cause_text
),
shipping_deployments AS (
    -- the deployment that shipped the commit or revision, preferring the incident's own service
    -- and environment, then its service, then any
    SELECT cd.incident_id,
           d.id AS deployment_id,
           d.deployed_at,
           CASE
               WHEN d.service = c.service AND d.environment = c.environment THEN 1
               WHEN d.service = c.service THEN 2
               ELSE 3
           END AS preference
    FROM gd_listing_cause_deployments cd
    JOIN deployments d ON d.id = cd.deployment_id
    JOIN gd_listing_cause c ON c.id = cd.incident_id
)
SELECT incident_id, deployment_id, deployed_at
FROM (SELECT * FROM named_deployments UNION ALL SELECT * FROM shipping_deployments)
QUALIFY row_number() OVER (PARTITION BY incident_id ORDER BY preference, deployed_at, deployment_id) = 1;
-- statement
SELECT created_at
FROM (
    SELECT i.id, i.service, s.team, i.environment, i.created_at, i.resolved_at IS NULL AS is_open
    FROM incidents i
    LEFT JOIN services s ON s.name = i.service
) AS incident
WHERE {where}
-- statement
WITH listed AS (
    SELECT * FROM (
        SELECT i.id, i.service, s.team, i.environment, i.created_at, i.resolved_at,
               i.resolved_at IS NULL AS is_open, i.title, i.root_cause
        FROM incidents i
        LEFT JOIN services s ON s.name = i.service
    ) AS incident
    WHERE ({where}) AND {slice}
),
successful_deployments AS (
    -- one row per (service, environment, instant): equal times keep the largest id
    SELECT service, environment, deployed_at, id
    FROM deployments
    WHERE status = 'success' AND {deployments_slice}
    QUALIFY row_number() OVER (PARTITION BY service, environment, deployed_at ORDER BY id DESC) = 1
),
gap_choice AS (
    -- rule 2: the latest successful deployment of the incident's service and environment at or
    -- before its creation, if within the gap. One ASOF LEFT JOIN over the listed rows: the slice
    -- of incidents is read once, with no second join back by id.
    SELECT l.*,
           CASE WHEN (epoch(l.created_at) - epoch(s.deployed_at)) / 3600.0
                     <= coalesce(CAST(getvariable('gitops_dora_max_attribution_gap_hours') AS DOUBLE), 168.0)
                THEN s.id END AS gap_deployment_id,
           CASE WHEN (epoch(l.created_at) - epoch(s.deployed_at)) / 3600.0
                     <= coalesce(CAST(getvariable('gitops_dora_max_attribution_gap_hours') AS DOUBLE), 168.0)
                THEN s.deployed_at END AS gap_deployed_at
    FROM listed AS l
    ASOF LEFT JOIN successful_deployments s
      ON s.service = l.service AND s.environment = l.environment AND l.created_at >= s.deployed_at
)
SELECT l.id,
       l.service,
       l.environment,
       l.created_at,
       l.resolved_at,
       CASE WHEN l.is_open THEN 'open' ELSE 'resolved' END AS status,
       CASE WHEN l.resolved_at IS NOT NULL THEN (epoch(l.resolved_at) - epoch(l.created_at)) / 3600.0 END
           AS restore_hours,
       CASE
           WHEN r.deployment_id IS NOT NULL THEN 'root_cause'
           WHEN l.gap_deployment_id IS NOT NULL THEN 'gap'
           ELSE 'unattributed'
       END AS attribution_rule,
       coalesce(r.deployment_id, l.gap_deployment_id) AS deployment_id,
       CASE WHEN r.deployment_id IS NOT NULL THEN r.deployed_at ELSE l.gap_deployed_at END
           AS deployment_deployed_at,
       l.root_cause,
       l.title,
       l.root_cause IS NOT NULL AND trim(l.root_cause) <> '' AND r.deployment_id IS NULL AS root_cause_unmatched
FROM gap_choice l
LEFT JOIN gd_listing_root_cause r ON r.incident_id = l.id
