-- Objects an in-cluster reconciler synced from the assessed repositories: proof that something
-- pulls from them (assessed_objects.sql says which objects those are).
-- Parameters: $as_of, $repos.
WITH assessed_objects AS (
    {assessed_objects}
),
syncs_until_as_of AS (
    SELECT e.reconciler, e.kind, coalesce(e.namespace, '') AS namespace, e.name, e.occurred_at
    FROM reconciler_events e
    SEMI JOIN assessed_objects a
      ON a.reconciler = e.reconciler AND a.kind = e.kind AND a.namespace = coalesce(e.namespace, '')
     AND a.name = e.name
    WHERE e.event_type = 'sync' AND e.occurred_at <= $as_of
)
SELECT reconciler, kind, namespace, name, count(*) AS syncs, max(occurred_at) AS last_sync_at
FROM syncs_until_as_of
GROUP BY reconciler, kind, namespace, name
ORDER BY syncs DESC, reconciler, kind, namespace, name
LIMIT 20
