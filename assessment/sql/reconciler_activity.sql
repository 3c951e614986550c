-- Objects an in-cluster reconciler synced from the assessed repositories: proof that something
-- pulls from them (assessed_objects.sql says which objects those are). The 20 busiest objects per
-- assessed moment.
-- Parameters: $moments (one result per moment, counting syncs up to it), $repos.
WITH assessed_objects AS (
    {assessed_objects}
),
assessed_moments AS (
    SELECT DISTINCT unnest($moments::TIMESTAMPTZ[]) AS as_of
),
syncs_until_as_of AS (
    SELECT m.as_of, e.reconciler, e.kind, coalesce(e.namespace, '') AS namespace, e.name, e.occurred_at
    FROM reconciler_events e
    SEMI JOIN assessed_objects a
      ON a.reconciler = e.reconciler AND a.kind = e.kind AND a.namespace = coalesce(e.namespace, '')
     AND a.name = e.name
    JOIN assessed_moments m ON e.occurred_at <= m.as_of
    WHERE e.event_type = 'sync'
),
syncs_per_object AS (
    SELECT as_of, reconciler, kind, namespace, name, count(*) AS syncs, max(occurred_at) AS last_sync_at
    FROM syncs_until_as_of
    GROUP BY as_of, reconciler, kind, namespace, name
)
SELECT as_of, reconciler, kind, namespace, name, syncs, last_sync_at
FROM syncs_per_object
QUALIFY row_number() OVER (PARTITION BY as_of ORDER BY syncs DESC, reconciler, kind, namespace, name) <= 20
ORDER BY as_of, syncs DESC, reconciler, kind, namespace, name
