-- Lead time split into pull-request phases, one row per deployed change (change_lead_times) with
-- the merged PR that brought it, if any:
--   coding  = first commit -> PR opened       pickup = opened -> first review
--   review  = first review -> merged           deploy = merged -> deployed
-- A change belongs to a PR when it is the PR's merge_commit_sha (squash / merge commit / last
-- rebased commit) or one of the PR's own commits (merge-commit flow). Changes without a PR
-- (trunk-based work) keep pr_number NULL: they still count for lead time, with no breakdown.
-- A PR shipped with several changes is measured once per deployment (is_pr_representative).
-- Phases are clamped at 0 (a PR opened before its first commit has 0 coding time); a review
-- submitted after the merge (or no review at all) is no review: pickup and review are NULL then and
-- stay out of their medians.
-- Hours between two instants, clamped at 0; NULL when either is unknown (greatest() alone would skip
-- the NULL and give 0, which would count an unreviewed PR as reviewed instantly).
CREATE OR REPLACE TEMP MACRO phase_hours(later_at, earlier_at) AS
    CASE WHEN later_at IS NULL OR earlier_at IS NULL THEN NULL
         ELSE greatest(0, epoch_seconds(later_at) - epoch_seconds(earlier_at)) / 3600.0 END;

-- change_pull_requests holds the PR side alone, one row per (repo, sha) that belongs to a merged PR,
-- so the PR breakdown family joins only these rows (none when no PR was collected) instead of
-- running a window function over every deployed change.
CREATE OR REPLACE TEMP VIEW change_pull_requests AS
WITH merged_prs AS (
    SELECT repo, number, created_at, coalesce(first_commit_at, created_at) AS first_commit_at,
           first_review_at, merged_at, merge_commit_sha, coalesce(commit_shas, []) AS commit_shas
    FROM pull_requests
    WHERE merged_at IS NOT NULL
),
pr_commit_shas AS (
    -- the PR's merge_commit_sha and each of its own commits (a PR may appear twice for one sha)
    SELECT repo, merge_commit_sha AS sha, number, created_at, first_commit_at, first_review_at, merged_at
    FROM merged_prs
    UNION ALL
    SELECT repo, unnest(commit_shas) AS sha, number, created_at, first_commit_at, first_review_at, merged_at
    FROM merged_prs
),
sha_pr AS (
    -- one PR per commit: the first merged (a commit can sit in a PR and in a later re-merge)
    SELECT * FROM pr_commit_shas
    WHERE sha IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY repo, sha ORDER BY merged_at, number) = 1
),
reviewed_before_merge AS (
    SELECT repo, sha, number AS pr_number, created_at AS pr_created_at, first_commit_at AS pr_first_commit_at,
           CASE WHEN first_review_at <= merged_at THEN first_review_at END AS pr_first_review_at,
           merged_at AS pr_merged_at
    FROM sha_pr
)
SELECT *,
       phase_hours(pr_created_at, pr_first_commit_at) AS coding_hours,
       phase_hours(pr_first_review_at, pr_created_at) AS pickup_hours,
       phase_hours(pr_merged_at, pr_first_review_at) AS review_hours
FROM reviewed_before_merge;

CREATE OR REPLACE TEMP VIEW pr_lead_times AS
WITH changes_with_pr AS (
    SELECT l.*, c.pr_number, c.pr_created_at, c.pr_first_commit_at, c.pr_first_review_at, c.pr_merged_at
    FROM change_lead_times l
    LEFT JOIN change_pull_requests c ON c.repo = l.repo AND c.sha = l.sha
),
change_phases AS (
    SELECT *,
           -- a change without a PR has NULL phases (no breakdown)
           phase_hours(pr_created_at, pr_first_commit_at) AS coding_hours,
           phase_hours(pr_first_review_at, pr_created_at) AS pickup_hours,
           phase_hours(pr_merged_at, pr_first_review_at) AS review_hours,
           phase_hours(deployed_at, pr_merged_at) AS deploy_hours,
           pr_number IS NOT NULL
               AND row_number() OVER (PARTITION BY deployment_id, repo, pr_number ORDER BY sha) = 1
               AS is_pr_representative
    FROM changes_with_pr
)
SELECT deployment_id, repo, sha, service, team, environment, repository, deployed_at, status, is_baseline,
       counts_for_lead_time, lead_hours, pr_number, pr_created_at, pr_first_commit_at, pr_first_review_at,
       pr_merged_at, coding_hours, pickup_hours, review_hours, deploy_hours,
       coalesce(is_pr_representative, false) AS is_pr_representative
FROM change_phases;
