-- One row per deployment (success or failed attempt) with its stability outcome:
--   is_failed      any failure signal (failure_signals)
--   recovered_at   incidents first: the latest resolution of its incidents (NULL while one is
--                  open); otherwise the first deployment that restored service after a revert,
--                  rollback or failed rollout; recovery_hours = recovered_at - deployed_at
--                  (NULL while unrecovered; a recovery before the deployment is left out)
--   is_rework      unplanned work that fixed a user-facing problem: it ships a genuine revert, it
--                  is a rollback, or it ships a change linked to an incident: a merged PR whose
--                  title names an incident id, or a hotfix label or branch (PR) or commit subject
--                  (merge commits carry the branch name) matching the config's hotfix pattern
--                  (session variable gitops_dora_hotfix_pattern)
CREATE OR REPLACE TEMP VIEW deployment_outcomes AS
WITH signals_per_deployment AS (
    SELECT deployment_id,
           list(signal ORDER BY signal) AS failure_signals,
           bool_or(signal = 'incident') AS has_incident,
           max(recovered_at) FILTER (WHERE signal = 'incident') AS incident_recovered_at,
           count(*) FILTER (WHERE signal = 'incident' AND recovered_at IS NULL) AS open_incident_signals,
           min(recovered_at) FILTER (WHERE signal <> 'incident') AS deploy_recovered_at
    FROM failure_signals
    GROUP BY deployment_id
),
recoveries AS (
    SELECT deployment_id,
           failure_signals,
           CASE
               WHEN has_incident AND open_incident_signals > 0 THEN NULL
               WHEN has_incident THEN incident_recovered_at
               ELSE deploy_recovered_at
           END AS recovered_at
    FROM signals_per_deployment
),
incident_ids AS (
    SELECT DISTINCT lower(id) AS incident_key FROM incidents
),
genuine_reverts AS MATERIALIZED (
    SELECT repo, sha, reverts_sha FROM revert_chain WHERE is_genuine_revert
),
hotfix_commits AS MATERIALIZED (
    -- the pattern is a session value, so DuckDB compiles the regex once (not per row); with the
    -- default pattern every match contains 'hot' (any case), and that cheap test runs first
    -- (session variable gitops_dora_hotfix_required_text, '' for a pattern set in the config);
    -- contains(lower(...)) rather than ILIKE, which cost four times as much over 1M subjects
    SELECT repo, sha
    FROM commits
    WHERE (coalesce(getvariable('gitops_dora_hotfix_required_text'), '') = ''
           OR contains(lower(subject), lower(getvariable('gitops_dora_hotfix_required_text'))))
      AND regexp_matches(coalesce(subject, ''),
                         coalesce(getvariable('gitops_dora_hotfix_pattern'), '(?i)^(hotfix|hot-fix)[/_-]|\bhotfix\b'))
),
looked_up_changes AS MATERIALIZED (
    -- the deployment changes that are a genuine revert or a commit one undoes, a hotfix commit or a
    -- merged PR's merge commit: deployment_changes is read once for the lookups below (IN keeps the
    -- small commit list as the hash side)
    WITH looked_up_commits AS (
        SELECT repo, sha FROM genuine_reverts
        UNION SELECT repo, reverts_sha FROM genuine_reverts
        UNION SELECT repo, sha FROM hotfix_commits
        UNION SELECT repo, merge_commit_sha FROM pull_requests
              WHERE merged_at IS NOT NULL AND merge_commit_sha IS NOT NULL
    )
    SELECT dc.deployment_id, dc.repo, dc.sha
    FROM deployment_changes dc
    JOIN looked_up_commits c ON c.repo = dc.repo AND c.sha = dc.sha
    WHERE dc.sha IN (SELECT sha FROM looked_up_commits)
),
revert_rework AS (
    -- a revert shipped together with the commit it undoes never reached users: no rework
    SELECT DISTINCT dc.deployment_id, 'revert' AS reason
    FROM looked_up_changes dc
    JOIN genuine_reverts rc ON rc.repo = dc.repo AND rc.sha = dc.sha
    WHERE NOT EXISTS (
          SELECT 1 FROM looked_up_changes same
          WHERE same.deployment_id = dc.deployment_id AND same.repo = rc.repo AND same.sha = rc.reverts_sha
      )
),
hotfix_commit_rework AS (
    SELECT DISTINCT dc.deployment_id, 'hotfix' AS reason
    FROM hotfix_commits h
    JOIN looked_up_changes dc ON dc.repo = h.repo AND dc.sha = h.sha
),
deployed_pull_requests AS (
    SELECT DISTINCT dc.deployment_id, pr.repo, pr.number, pr.title, pr.labels, pr.head_ref
    FROM pull_requests pr
    JOIN looked_up_changes dc ON dc.repo = pr.repo AND dc.sha = pr.merge_commit_sha
    WHERE pr.merged_at IS NOT NULL
),
hotfix_pr_rework AS (
    SELECT DISTINCT p.deployment_id, 'hotfix' AS reason
    FROM deployed_pull_requests p
    WHERE regexp_matches(coalesce(p.head_ref, ''),
                         coalesce(getvariable('gitops_dora_hotfix_pattern'), '(?i)^(hotfix|hot-fix)[/_-]|\bhotfix\b'))
       OR list_bool_or(list_transform(
              coalesce(p.labels, []),
              lambda l: regexp_matches(l, coalesce(getvariable('gitops_dora_hotfix_pattern'),
                                                   '(?i)^(hotfix|hot-fix)[/_-]|\bhotfix\b'))))
),
pr_title_tokens AS (
    SELECT deployment_id, unnest(regexp_extract_all(lower(title), '[a-z0-9][a-z0-9_.#/-]*[a-z0-9]')) AS token
    FROM deployed_pull_requests
    WHERE title IS NOT NULL
),
incident_pr_rework AS (
    SELECT DISTINCT t.deployment_id, 'incident_reference' AS reason
    FROM pr_title_tokens t
    JOIN incident_ids i ON i.incident_key = t.token
),
rollback_rework AS (
    SELECT id AS deployment_id, 'rollback' AS reason FROM deployments WHERE is_rollback
),
rework_reasons AS (
    SELECT deployment_id, list(DISTINCT reason ORDER BY reason) AS rework_reasons
    FROM (
        SELECT * FROM revert_rework
        UNION ALL SELECT * FROM hotfix_commit_rework
        UNION ALL SELECT * FROM hotfix_pr_rework
        UNION ALL SELECT * FROM incident_pr_rework
        UNION ALL SELECT * FROM rollback_rework
    )
    GROUP BY deployment_id
)
SELECT d.id,
       d.service,
       s.team,
       d.environment,
       coalesce(e.is_production, d.environment IN ('production', 'prod')) AS is_production,
       d.repository,
       d.revision,
       d.deployed_at,
       d.status,
       d.source,
       d.is_rollback,
       r.deployment_id IS NOT NULL AS is_failed,
       coalesce(r.failure_signals, []) AS failure_signals,
       r.recovered_at,
       CASE WHEN r.recovered_at >= d.deployed_at
            THEN (epoch_seconds(r.recovered_at) - epoch_seconds(d.deployed_at)) / 3600.0 END AS recovery_hours,
       w.deployment_id IS NOT NULL AS is_rework,
       coalesce(w.rework_reasons, []) AS rework_reasons
FROM deployments d
LEFT JOIN services s ON s.name = d.service
LEFT JOIN environments e ON e.name = d.environment
LEFT JOIN recoveries r ON r.deployment_id = d.id
LEFT JOIN rework_reasons w ON w.deployment_id = d.id;
