-- Redeploys: a successful deployment of exactly what the previous successful deployment of the same
-- service and environment already runs (the same repository@revision, or the same set of pairs for
-- a deployment of several repositories). It ships no new change either way; whether deployment
-- frequency counts it is the config's deployments.count_redeploys (session variable
-- gitops_dora_count_redeploys, default true). Argo CD and Flux deployments are never flagged: their
-- derivation already turns a re-sync of the running state into no deployment at all, and a Helm
-- upgrade of the same chart revision with new values is a real rollout.
-- With the default (redeploys counted) nothing reads the flag, so the views that join this one do
-- so only when the variable is false: a window over every deployment is not free at a million rows.
CREATE OR REPLACE TEMP VIEW deployment_redeploys AS
WITH shipped_pairs AS (
    SELECT deployment_id, string_agg(repository || '@' || revision, ' ' ORDER BY repository) AS pairs
    FROM deployment_revisions
    GROUP BY deployment_id
),
successful_shipped AS (
    SELECT d.id,
           d.service,
           d.environment,
           d.source,
           d.deployed_at,
           d.repository,
           d.revision,
           p.pairs
    FROM deployments d
    LEFT JOIN shipped_pairs p ON p.deployment_id = d.id
    WHERE d.status = 'success'
),
previous_shipped AS (
    SELECT id,
           source,
           repository,
           revision,
           pairs,
           lag(repository) OVER w AS previous_repository,
           lag(revision) OVER w AS previous_revision,
           lag(pairs) OVER w AS previous_pairs
    FROM successful_shipped
    WINDOW w AS (PARTITION BY service, environment ORDER BY deployed_at, id)
)
SELECT id,
       coalesce(source NOT IN ('argocd', 'flux')
                AND CASE WHEN pairs IS NOT NULL OR previous_pairs IS NOT NULL
                         THEN pairs = previous_pairs  -- the first pair's order is the file's
                         ELSE repository = previous_repository AND revision = previous_revision
                    END, false) AS is_redeploy
FROM previous_shipped;
