-- The rows `gitops-dora deployments` prints: the listing columns of deployment_facts
-- (analytics/metrics/sql/views/10_deployment_facts.sql) with each reconciler deployment's mapping,
-- without what the listing does not print (the window numbering every deployment of a service
-- and environment for the baseline flag), so a million deployments list in bounded memory
-- (issue #16). Statements split at the line "-- statement":
--   1. the listed deployments' times, from which analytics/listing cuts the list into slices of
--      a bounded number of rows;
--   2. one slice (a range of deployed_at), its change counts taken from the changes of the
--      slice's deployments only.
-- The command's filter is SQL over d.id, d.service, d.team, d.environment and d.deployed_at.
-- The redeploy flag deployment_facts joins only when deployments.count_redeploys is false, which
-- this command never sets, so it adds nothing here.
-- tests/test_listing_deployments.py checks that every row equals the view's.
SELECT deployed_at
FROM (
    SELECT d.id, d.service, s.team, d.environment, d.deployed_at
    FROM deployments d
    LEFT JOIN services s ON s.name = d.service
) AS d
WHERE {where}
-- statement
WITH listed AS NOT MATERIALIZED (
    SELECT * FROM (
        SELECT d.id, d.service, s.team, d.environment, d.revision, d.deployed_at, d.status, d.source,
               d.source_ref
        FROM deployments d
        LEFT JOIN services s ON s.name = d.service
    ) AS d
    WHERE ({where}) AND {slice}
),
change_counts AS (
    SELECT deployment_id, count(*) AS changes
    FROM deployment_changes
    WHERE deployment_id IN (SELECT id FROM listed)
    GROUP BY deployment_id
)
SELECT d.id, d.service, d.team, d.environment, d.revision, d.deployed_at, d.status, d.source,
       d.source_ref, coalesce(c.changes, 0) AS changes, o.mapped_by
FROM listed AS d
LEFT JOIN change_counts c ON c.deployment_id = d.id
LEFT JOIN reconciler_objects AS o
  ON d.source = o.reconciler AND d.source_ref = o.kind || '/' || o.namespace || '/' || o.name
