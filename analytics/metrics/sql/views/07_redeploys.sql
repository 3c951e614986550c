-- Redeploys: a successful deployment of exactly what the previous successful deployment of the same
-- service and environment already runs (the same repository@revision, or the same set of pairs for
-- a deployment of several repositories). It ships no new change either way; whether deployment
-- frequency counts it is the config's deployments.count_redeploys (session variable
-- gitops_dora_count_redeploys, default true). Argo CD and Flux deployments are never flagged: their
-- derivation already turns a re-sync of the running state into no deployment at all, and a Helm
-- upgrade of the same chart revision with new values is a real rollout.
CREATE OR REPLACE TEMP VIEW deployment_redeploys AS
WITH shipped_pairs AS (
    SELECT deployment_id, string_agg(repository || '@' || revision, ' ' ORDER BY repository) AS shipped
    FROM deployment_revisions
    GROUP BY deployment_id
),
successful_shipped AS (
    SELECT d.id,
           d.service,
           d.environment,
           d.source,
           d.deployed_at,
           coalesce(p.shipped, d.repository || '@' || d.revision) AS shipped
    FROM deployments d
    LEFT JOIN shipped_pairs p ON p.deployment_id = d.id
    WHERE d.status = 'success'
),
previous_shipped AS (
    SELECT id,
           source,
           shipped,
           lag(shipped) OVER (PARTITION BY service, environment ORDER BY deployed_at, id) AS previous
    FROM successful_shipped
)
SELECT id,
       coalesce(source NOT IN ('argocd', 'flux') AND shipped = previous, false) AS is_redeploy
FROM previous_shipped;
