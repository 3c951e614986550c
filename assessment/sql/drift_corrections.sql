-- Drift the reconcilers saw, and whether a later successful sync of the same object corrected it.
-- Only objects that deploy from the assessed repositories count (assessed_objects.sql).
-- Parameters: $as_of (only events up to the assessed moment count), $repos.
WITH assessed_objects AS (
    {assessed_objects}
),
object_events AS (
    SELECT e.*
    FROM reconciler_events e
    SEMI JOIN assessed_objects a
      ON a.reconciler = e.reconciler AND a.kind = e.kind AND a.namespace = coalesce(e.namespace, '')
     AND a.name = e.name
),
drift_events AS (
    SELECT reconciler, kind, coalesce(namespace, '') AS namespace, name, occurred_at AS drift_at
    FROM object_events
    WHERE (event_type = 'drift' OR reason = 'DriftDetected')
      AND occurred_at <= $as_of
),
successful_syncs AS (
    SELECT reconciler, kind, coalesce(namespace, '') AS namespace, name, occurred_at AS sync_at
    FROM object_events
    WHERE event_type = 'sync'
      AND NOT regexp_matches(lower(coalesce(status, '')), 'fail|error')
      AND occurred_at <= $as_of
),
drift_with_first_correction AS (
    SELECT d.reconciler, d.kind, d.namespace, d.name, d.drift_at, min(s.sync_at) AS corrected_at
    FROM drift_events d
    LEFT JOIN successful_syncs s
      ON s.reconciler = d.reconciler AND s.kind = d.kind AND s.namespace = d.namespace
     AND s.name = d.name AND s.sync_at > d.drift_at
    GROUP BY d.reconciler, d.kind, d.namespace, d.name, d.drift_at
)
SELECT reconciler, kind, namespace, name,
       count(*)                    AS drifts,
       count(corrected_at)         AS corrected,
       max(drift_at)               AS last_drift_at,
       max(corrected_at)           AS last_corrected_at
FROM drift_with_first_correction
GROUP BY reconciler, kind, namespace, name
ORDER BY reconciler, kind, namespace, name
