-- Drift the reconcilers saw, and whether a later successful sync of the same object corrected it.
-- Only objects that deploy from the assessed repositories count (assessed_objects.sql).
-- Parameters: $moments (the assessed moments: for each, only events up to it count), $repos.
-- One query for every moment of a monthly history, not one per month.
WITH assessed_objects AS (
    {assessed_objects}
),
assessed_moments AS (
    SELECT DISTINCT unnest($moments::TIMESTAMPTZ[]) AS as_of
),
object_events AS (
    SELECT e.*
    FROM reconciler_events e
    SEMI JOIN assessed_objects a
      ON a.reconciler = e.reconciler AND a.kind = e.kind AND a.namespace = coalesce(e.namespace, '')
     AND a.name = e.name
),
drift_events AS (
    SELECT m.as_of, e.reconciler, e.kind, coalesce(e.namespace, '') AS namespace, e.name,
           e.occurred_at AS drift_at
    FROM object_events e
    JOIN assessed_moments m ON e.occurred_at <= m.as_of
    WHERE e.event_type = 'drift' OR e.reason = 'DriftDetected'
),
successful_syncs AS (
    SELECT m.as_of, e.reconciler, e.kind, coalesce(e.namespace, '') AS namespace, e.name,
           e.occurred_at AS sync_at
    FROM object_events e
    JOIN assessed_moments m ON e.occurred_at <= m.as_of
    WHERE e.event_type = 'sync'
      AND NOT regexp_matches(lower(coalesce(e.status, '')), 'fail|error')
),
drift_with_first_correction AS (
    SELECT d.as_of, d.reconciler, d.kind, d.namespace, d.name, d.drift_at, min(s.sync_at) AS corrected_at
    FROM drift_events d
    LEFT JOIN successful_syncs s
      ON s.as_of = d.as_of AND s.reconciler = d.reconciler AND s.kind = d.kind
     AND s.namespace = d.namespace AND s.name = d.name AND s.sync_at > d.drift_at
    GROUP BY d.as_of, d.reconciler, d.kind, d.namespace, d.name, d.drift_at
)
SELECT as_of, reconciler, kind, namespace, name,
       count(*)                    AS drifts,
       count(corrected_at)         AS corrected,
       max(drift_at)               AS last_drift_at,
       max(corrected_at)           AS last_corrected_at
FROM drift_with_first_correction
GROUP BY as_of, reconciler, kind, namespace, name
ORDER BY as_of, reconciler, kind, namespace, name
