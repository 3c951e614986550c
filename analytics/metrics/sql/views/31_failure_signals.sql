-- Why a deployment counts as failed: one row per (deployment, signal), each signal kept apart so
-- the dashboard can explain the verdict. Signals:
--   incident          incidents attributed to it (incident_attribution); recovered when the last
--                     of them is resolved (NULL while any is open)
--   revert            a LATER deployment of the same service and environment ships a revert of one
--                     of its changes; recovered at the first such deployment. A revert of a revert
--                     is a re-land, not a failure of the reverting deployment: only reverts at odd
--                     depth of a revert chain count (revert = 1, revert of revert = 2, ...)
--   reconciler_failed the rollout failed: deployments.status = 'failed', or a reconciler event
--                     'sync_failed' naming the deployment; recovered at the next successful
--                     deployment of the same service and environment
--   rollback          a later successful deployment is a rollback (deployments.is_rollback): the
--                     successful deployment it replaced (the one running) failed, recovered at
--                     the rollback
-- evidence lists the incident ids, revert commit shas, deployment/event ids or rollback ids.
CREATE OR REPLACE TEMP VIEW revert_chain AS
WITH RECURSIVE revert_commits AS MATERIALIZED (
    -- read the commits table once; the recursion below only walks these few rows
    SELECT repo, sha, reverts_sha FROM commits WHERE reverts_sha IS NOT NULL
),
chain(repo, sha, reverts_sha, depth) AS (
    SELECT r.repo, r.sha, r.reverts_sha, 1
    FROM revert_commits r
    WHERE NOT EXISTS (
        SELECT 1 FROM revert_commits t WHERE t.repo = r.repo AND t.sha = r.reverts_sha
    )
    UNION ALL
    SELECT r.repo, r.sha, r.reverts_sha, c.depth + 1
    FROM revert_commits r
    JOIN chain c ON c.repo = r.repo AND c.sha = r.reverts_sha
    WHERE c.depth < 100
)
SELECT repo, sha, reverts_sha, depth, depth % 2 = 1 AS is_genuine_revert
FROM chain;

CREATE OR REPLACE TEMP VIEW failure_signals AS
WITH genuine_reverts AS MATERIALIZED (
    SELECT repo, sha, reverts_sha FROM revert_chain WHERE is_genuine_revert
),
incident_signals AS (
    SELECT deployment_id,
           'incident' AS signal,
           list(incident_id ORDER BY created_at, incident_id) AS evidence,
           min(created_at) AS signal_at,
           CASE WHEN bool_or(is_open) THEN NULL ELSE max(resolved_at) END AS recovered_at,
           NULL::VARCHAR AS restored_by
    FROM incident_attribution
    WHERE deployment_id IS NOT NULL
    GROUP BY deployment_id
),
revert_changes AS MATERIALIZED (
    -- the deployment changes that are a genuine revert or a commit one undoes: deployment_changes
    -- (the big table) is read once for both lookups below; IN keeps the small list as the hash side
    SELECT dc.deployment_id, dc.repo, dc.sha
    FROM deployment_changes dc
    WHERE dc.sha IN (SELECT sha FROM genuine_reverts UNION ALL SELECT reverts_sha FROM genuine_reverts)
),
genuine_revert_changes AS (
    -- deployments that shipped a genuine revert commit, with the commit it undoes
    SELECT dc.deployment_id AS reverting_deployment_id, dc.repo, dc.sha AS revert_sha, rc.reverts_sha
    FROM revert_changes dc
    JOIN genuine_reverts rc ON rc.repo = dc.repo AND rc.sha = dc.sha
),
reverted_changes AS (
    SELECT dc.deployment_id, dc.repo, dc.sha
    FROM revert_changes dc
    WHERE dc.sha IN (SELECT reverts_sha FROM genuine_reverts)
),
reverted_deployments AS (
    SELECT reverted.id AS deployment_id,
           reverting.id AS reverting_deployment_id,
           reverting.deployed_at AS reverting_deployed_at,
           g.revert_sha
    FROM genuine_revert_changes g
    JOIN reverted_changes dc ON dc.repo = g.repo AND dc.sha = g.reverts_sha
    JOIN deployments reverted ON reverted.id = dc.deployment_id
    JOIN deployments reverting ON reverting.id = g.reverting_deployment_id
    WHERE reverting.service = reverted.service
      AND reverting.environment = reverted.environment
      AND reverting.deployed_at > reverted.deployed_at
),
revert_signals AS (
    SELECT deployment_id,
           'revert' AS signal,
           list(DISTINCT revert_sha ORDER BY revert_sha) AS evidence,
           min(reverting_deployed_at) AS signal_at,
           min(reverting_deployed_at) AS recovered_at,
           arg_min(reverting_deployment_id, reverting_deployed_at) AS restored_by
    FROM reverted_deployments
    GROUP BY deployment_id
),
successful_deployments AS (
    SELECT service, environment, deployed_at, id
    FROM deployments
    WHERE status = 'success'
    QUALIFY row_number() OVER (PARTITION BY service, environment, deployed_at ORDER BY id) = 1
),
failed_rollouts AS (
    SELECT d.id AS deployment_id, d.id AS evidence_id, d.service, d.environment, d.deployed_at AS failed_at
    FROM deployments d
    WHERE d.status = 'failed'
    UNION ALL
    SELECT d.id, e.id, d.service, d.environment, e.occurred_at
    FROM reconciler_events e
    JOIN deployments d ON d.id = e.deployment_id
    WHERE e.event_type = 'sync_failed'
),
failed_rollout_recoveries AS (
    SELECT f.deployment_id, f.evidence_id, f.failed_at, s.deployed_at AS recovered_at, s.id AS restored_by
    FROM failed_rollouts f
    ASOF LEFT JOIN successful_deployments s
      ON s.service = f.service AND s.environment = f.environment AND s.deployed_at > f.failed_at
),
reconciler_signals AS (
    SELECT deployment_id,
           'reconciler_failed' AS signal,
           list(DISTINCT evidence_id ORDER BY evidence_id) AS evidence,
           min(failed_at) AS signal_at,
           min(recovered_at) AS recovered_at,
           arg_min(restored_by, recovered_at) AS restored_by
    FROM failed_rollout_recoveries
    GROUP BY deployment_id
),
running_deployments AS (
    -- successful deployments, one per (service, environment, instant): what can be running
    SELECT service, environment, deployed_at, id
    FROM deployments
    WHERE status = 'success'
    QUALIFY row_number() OVER (PARTITION BY service, environment, deployed_at ORDER BY id DESC) = 1
),
rolled_back_deployments AS (
    -- the deployment a successful rollback replaced: the one running just before it
    -- (a failed rollback attempt restores nothing; it is a reconciler_failed signal of its own)
    SELECT prev.id AS deployment_id, rb.id AS rollback_id, rb.deployed_at AS rollback_at
    FROM deployments rb
    ASOF JOIN running_deployments prev
      ON prev.service = rb.service AND prev.environment = rb.environment AND prev.deployed_at < rb.deployed_at
    WHERE rb.is_rollback AND rb.status = 'success'
),
rollback_signals AS (
    SELECT deployment_id,
           'rollback' AS signal,
           list(DISTINCT rollback_id ORDER BY rollback_id) AS evidence,
           min(rollback_at) AS signal_at,
           min(rollback_at) AS recovered_at,
           arg_min(rollback_id, rollback_at) AS restored_by
    FROM rolled_back_deployments
    GROUP BY deployment_id
)
SELECT * FROM incident_signals
UNION ALL SELECT * FROM revert_signals
UNION ALL SELECT * FROM reconciler_signals
UNION ALL SELECT * FROM rollback_signals;
