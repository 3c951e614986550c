-- One row per deployment change with its lead time. The start is the commit's author time, or its
-- committer time when the session variable gitops_dora_lead_time_start is 'committer' (set by
-- analytics.metrics.engine.apply_settings from the config or --lead-time-start). A merged PR's
-- first commit (pr_change_starts) is preferred when present. Baseline changes and negative lead
-- times stay in the view, flagged, so the metrics can report how many were left out.
-- A deployment that ships several repositories (deployment_revisions) may be the first of its
-- service+environment to ship one of them: that repository's changes are a baseline too (its
-- history predates what was observed), though the deployment is not the scope's first.
CREATE OR REPLACE TEMP VIEW change_lead_times AS
WITH settings AS (
    SELECT coalesce(CAST(getvariable('gitops_dora_lead_time_start') AS VARCHAR), 'author') AS lead_time_start
),
multi_repo_scopes AS (
    SELECT DISTINCT d.service, d.environment, r.repository
    FROM deployment_revisions r
    JOIN deployments d ON d.id = r.deployment_id
),
repository_deployments AS (
    -- every deployment of those scopes and repositories: its first pair, then its other pairs
    SELECT d.id, d.service, d.environment, d.repository, d.deployed_at
    FROM deployments d
    SEMI JOIN multi_repo_scopes m
        ON m.service = d.service AND m.environment = d.environment AND m.repository = d.repository
    UNION
    SELECT d.id, d.service, d.environment, r.repository, d.deployed_at
    FROM deployment_revisions r
    JOIN deployments d ON d.id = r.deployment_id
),
repository_baselines AS (
    SELECT id AS deployment_id, repository AS repo
    FROM repository_deployments
    QUALIFY row_number() OVER (PARTITION BY service, environment, repository ORDER BY deployed_at, id) = 1
),
deployments_with_epoch AS (
    -- the deployment's instant in epoch seconds, computed once per deployment rather than once per
    -- change (1M changes against 100k deployments at scale); the same DOUBLE either way
    SELECT b.*, epoch_seconds(b.deployed_at) AS deployed_epoch
    FROM deployment_baselines b
),
changes_with_commits AS (
    SELECT dc.deployment_id,
           dc.repo,
           dc.sha,
           f.service,
           f.team,
           f.environment,
           f.repository,
           f.deployed_at,
           f.deployed_epoch,
           f.status,
           f.is_baseline OR rb.deployment_id IS NOT NULL AS is_baseline,
           c.author_time,
           c.committer_time,
           p.first_commit_at AS pr_first_commit_at
    FROM deployment_changes dc
    JOIN deployments_with_epoch f ON f.id = dc.deployment_id
    LEFT JOIN commits c ON c.repo = dc.repo AND c.sha = dc.sha
    LEFT JOIN pr_change_starts p ON p.repo = dc.repo AND p.sha = dc.sha
    LEFT JOIN repository_baselines rb ON rb.deployment_id = dc.deployment_id AND rb.repo = dc.repo
),
change_starts AS (
    SELECT cw.*,
           CASE
               WHEN cw.pr_first_commit_at IS NOT NULL THEN cw.pr_first_commit_at
               WHEN s.lead_time_start = 'committer' THEN cw.committer_time
               ELSE cw.author_time
           END AS start_at,
           CASE
               WHEN cw.pr_first_commit_at IS NOT NULL THEN 'pr_first_commit'
               WHEN cw.author_time IS NULL THEN NULL
               ELSE s.lead_time_start
           END AS start_source
    FROM changes_with_commits cw
    CROSS JOIN settings s
),
change_lead_hours AS (
    SELECT cs.*,
           (cs.deployed_epoch - epoch_seconds(cs.start_at)) / 3600.0 AS lead_hours
    FROM change_starts cs
)
SELECT deployment_id,
       repo,
       sha,
       service,
       team,
       environment,
       repository,
       deployed_at,
       status,
       is_baseline,
       start_at,
       start_source,
       lead_hours,
       coalesce(lead_hours < 0, false) AS is_negative,
       -- what the lead-time median and p90 are computed over
       (NOT is_baseline AND lead_hours IS NOT NULL AND lead_hours >= 0) AS counts_for_lead_time
FROM change_lead_hours;
