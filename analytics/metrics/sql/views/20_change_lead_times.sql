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
missing_times AS (
    -- changes stored without their commit's times (deployment_changes.author_time, filled by the
    -- writers and migration 1601 from commits): written before their commit was collected, or
    -- by a writer that does not fill them. Only these are looked up in commits, so a store whose
    -- changes all carry their times never joins its million changes with its million commits
    -- (with no such row the join stops before reading commits).
    SELECT dc.rowid AS change_row, dc.deployment_id, dc.repo, dc.sha
    FROM deployment_changes dc
    WHERE dc.author_time IS NULL
),
change_times AS (
    SELECT dc.rowid AS change_row, dc.deployment_id, dc.repo, dc.sha, dc.author_time, dc.committer_time
    FROM deployment_changes dc
    WHERE dc.author_time IS NOT NULL
    UNION ALL
    SELECT m.change_row, m.deployment_id, m.repo, m.sha, c.author_time, c.committer_time
    FROM commits c
    RIGHT JOIN missing_times m ON c.repo = m.repo AND c.sha = m.sha
),
pr_start_changes AS (
    -- the changes that are a merged PR's merge commit, by row: the PR side is the hash table, so
    -- without merged PRs the changes are not read here at all, and the changes are matched to it
    -- by their row number (an integer) instead of by (repo, sha) strings
    SELECT dc.rowid AS change_row, p.first_commit_at
    FROM deployment_changes dc
    JOIN pr_change_starts p ON p.repo = dc.repo AND p.sha = dc.sha
),
repository_baseline_changes AS (
    -- the changes of a repository's first deployment to a scope (by row, likewise)
    SELECT dc.rowid AS change_row
    FROM deployment_changes dc
    JOIN repository_baselines rb ON rb.deployment_id = dc.deployment_id AND rb.repo = dc.repo
),
pull_request_shas AS (
    -- the commits of merged PRs (a PR's merge_commit_sha and its own commits: the membership
    -- rule of change_pull_requests, 40_pr_lead_time.sql)
    SELECT repo, merge_commit_sha AS sha FROM pull_requests WHERE merged_at IS NOT NULL
    UNION
    SELECT repo, unnest(commit_shas) AS sha FROM pull_requests WHERE merged_at IS NOT NULL
),
pull_request_changes AS (
    -- the changes that came with a merged PR, by row, likewise: the engine's window_changes
    -- keeps this flag so the PR breakdown reads only those rows, not the million others
    SELECT dc.rowid AS change_row
    FROM deployment_changes dc
    JOIN pull_request_shas p ON p.repo = dc.repo AND p.sha = dc.sha
),
changes_with_commits AS (
    SELECT ct.change_row,
           ct.deployment_id,
           f.deployment_row,
           ct.repo,
           ct.sha,
           f.service,
           f.team,
           f.environment,
           f.repository,
           f.deployed_at,
           f.deployed_epoch,
           f.status,
           f.is_baseline OR rbc.change_row IS NOT NULL AS is_baseline,
           ct.author_time,
           ct.committer_time,
           p.first_commit_at AS pr_first_commit_at,
           prc.change_row IS NOT NULL AS in_pull_request
    FROM change_times ct
    JOIN deployments_with_epoch f ON f.id = ct.deployment_id
    LEFT JOIN pr_start_changes p ON p.change_row = ct.change_row
    LEFT JOIN repository_baseline_changes rbc ON rbc.change_row = ct.change_row
    LEFT JOIN pull_request_changes prc ON prc.change_row = ct.change_row
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
       deployment_row,
       repo,
       sha,
       -- the change's row in deployment_changes (its rowid in this snapshot): the engine's
       -- window_changes keeps this integer instead of the repo and sha strings
       change_row,
       in_pull_request,
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
