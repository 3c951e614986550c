-- The revisions of a streamed deployments file (analytics/importers/deployments.py,
-- _store_bounded) resolved as resolve_many resolves them for the record path, in one statement
-- over the store: a revision of 7-40 hex digits is the one (repository, commit) whose sha it
-- prefixes, lower-cased; a name is the one (repository, tag) so named; both within the row's
-- repository when it has one. Anything else stays as written ('sha' for hex, else 'unknown').
-- {keys}: a Parquet file of the plain rows' distinct (repository, revision); _dep_pair_keys:
-- the pairs of the rows that ship several repositories.
CREATE OR REPLACE TEMP TABLE _dep_res AS
WITH asked AS (
    SELECT repository AS k_repo, revision AS k_rev FROM read_parquet({keys})
    UNION
    SELECT repo, raw FROM _dep_pair_keys
),
typed AS (
    SELECT k_repo, k_rev, regexp_full_match(k_rev, '[0-9a-fA-F]{7,40}') AS hex FROM asked
),
wanted AS (
    SELECT k_repo, k_rev, hex, CASE WHEN hex THEN lower(k_rev) ELSE k_rev END AS rev FROM typed
),
sha_match AS (
    -- the 7-character prefix makes the sha match an equi-join (a hex revision is 7+ digits)
    SELECT DISTINCT q.k_repo, q.k_rev, c.repo, c.sha
    FROM wanted q JOIN commits c ON q.hex AND left(c.sha, 7) = left(q.rev, 7) AND starts_with(c.sha, q.rev)
                                AND (q.k_repo IS NULL OR c.repo = q.k_repo)
),
tag_match AS (
    SELECT DISTINCT q.k_repo, q.k_rev, t.repo, t.sha
    FROM wanted q JOIN tags t ON NOT q.hex AND t.name = q.rev AND (q.k_repo IS NULL OR t.repo = q.k_repo)
),
single_match AS (
    SELECT k_repo, k_rev, min(repo) AS repo, min(sha) AS sha
    FROM (SELECT * FROM sha_match UNION ALL SELECT * FROM tag_match)
    GROUP BY k_repo, k_rev
    HAVING count(*) = 1
)
SELECT q.k_repo, q.k_rev,
       CASE WHEN m.sha IS NOT NULL THEN m.sha ELSE q.rev END AS revision,
       CASE WHEN m.sha IS NOT NULL THEN m.repo ELSE q.k_repo END AS repository,
       CASE WHEN q.hex THEN 'sha' WHEN m.sha IS NOT NULL THEN 'tag' ELSE 'unknown' END AS fmt
FROM wanted q
LEFT JOIN single_match m ON m.k_repo IS NOT DISTINCT FROM q.k_repo AND m.k_rev = q.k_rev
