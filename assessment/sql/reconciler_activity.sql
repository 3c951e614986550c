-- Objects an in-cluster reconciler synced: proof that something pulls from git.
-- Parameters: $as_of.
WITH syncs_until_as_of AS (
    SELECT reconciler, kind, coalesce(namespace, '') AS namespace, name, occurred_at
    FROM reconciler_events
    WHERE event_type = 'sync' AND occurred_at <= $as_of
)
SELECT reconciler, kind, namespace, name, count(*) AS syncs, max(occurred_at) AS last_sync_at
FROM syncs_until_as_of
GROUP BY reconciler, kind, namespace, name
ORDER BY syncs DESC, reconciler, kind, namespace, name
LIMIT 20
