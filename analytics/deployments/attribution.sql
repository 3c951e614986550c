-- Attribution's set-based steps (analytics/deployments/attribution.py), one statement per block,
-- split at the line "-- statement". They run in the caller's transaction on the store connection;
-- every table they create is TEMP and dropped by attribution.py. The walk of the commit graph
-- itself stays in Python (one walk per scope over integer commit numbers); everything up to the
-- walk's input (which deployments, from which commit, in which order) is decided here, so Python
-- never holds a row per deployment.
--
-- 1. _attr_all_deps: the deployments the next reads need, copied once (on DuckLake every
--    reference to a store table costs a catalog look-up, about 10 ms of CPU on a SQLite catalog).
CREATE OR REPLACE TEMP TABLE _attr_all_deps AS
SELECT id, service, environment, repository, revision, raw_revision, deployed_at, status FROM deployments
-- statement
-- 2. _attr_scopes and _attr_shipped: the selected scopes ($1/$2 given, plus those with a
--    deployment of a repository in $3, or every scope when $4) and their successful deployments,
--    a row per (deployment, repository): a deployment shipping several repositories has a pair
--    per repository in deployment_revisions, and its deployments row holds the first pair again.
--    The copy is kept (UNION ALL): every later step is blind to a repeated row (the revisions
--    are read DISTINCT, the walks take the min per scope and start) except the count of
--    unresolved rows, which reads them DISTINCT (step 10). A UNION here hashed every one of
--    the rows to drop a few: about 1.9 s of a 1M-deployment import.
CREATE OR REPLACE TEMP TABLE _attr_scopes AS
WITH given AS (SELECT unnest($1::VARCHAR[]) AS service, unnest($2::VARCHAR[]) AS environment),
by_repository AS (
    SELECT service, environment FROM _attr_all_deps
    WHERE $4 OR repository IN (SELECT unnest($3::VARCHAR[]))
)
SELECT service, environment FROM given
UNION
SELECT service, environment FROM by_repository
-- statement
CREATE OR REPLACE TEMP TABLE _attr_shipped AS
WITH succeeded AS MATERIALIZED (
    SELECT d.service, d.environment, d.id, d.repository, d.revision, d.raw_revision,
           epoch_us(d.deployed_at) AS us
    FROM _attr_all_deps d JOIN _attr_scopes s ON s.service = d.service AND s.environment = d.environment
    WHERE d.status = 'success'
),
several AS (
    SELECT d.service, d.environment, d.id, r.repository, r.revision, r.raw_revision, d.us
    FROM deployment_revisions r JOIN succeeded d ON d.id = r.deployment_id
)
SELECT * FROM succeeded
UNION ALL
SELECT * FROM several
-- statement
-- The same rows when the caller's transaction began on a store without rows and wrote no
-- deployment revision (prepare_attribution's nothing_stored: a first collect git into a new
-- store): deployment_revisions is empty, and not naming it saves its catalog look-up.
CREATE OR REPLACE TEMP TABLE _attr_shipped AS
SELECT d.service, d.environment, d.id, d.repository, d.revision, d.raw_revision,
       epoch_us(d.deployed_at) AS us
FROM _attr_all_deps d JOIN _attr_scopes s ON s.service = d.service AND s.environment = d.environment
WHERE d.status = 'success'
-- statement
-- 2b. _attr_candidates: each distinct (repository, revision) the shipped rows name (their
--     revision and their raw revision) with the shas it may stand for, by rank: itself, the sha
--     of a tag of that name, its trimmed lower-case form. It needs no commit, so it runs with the
--     reads before the commits' load ends (prepare_attribution), and the store's tags table is
--     not named after git's exit in collect git (a catalog look-up of 10-15 ms on DuckLake).
CREATE OR REPLACE TEMP TABLE _attr_candidates AS
WITH asked AS MATERIALIZED (
    SELECT DISTINCT repository AS repo, revision AS rev FROM _attr_shipped
    WHERE repository IS NOT NULL AND revision IS NOT NULL
    UNION
    SELECT DISTINCT repository, raw_revision FROM _attr_shipped
    WHERE repository IS NOT NULL AND raw_revision IS NOT NULL
)
SELECT repo, rev, rev AS sha, 1 AS rank FROM asked
UNION ALL
SELECT a.repo, a.rev, tg.sha, 2 FROM asked a JOIN tags tg ON tg.repo = a.repo AND tg.name = a.rev
UNION ALL
SELECT repo, rev, lower(trim(rev)), 3 FROM asked
-- statement
-- 3. _attr_nodes: the commits of every repository shipped, numbered 0..n-1 (one numbering
--    serves all; parents are matched within a repository, so walks never cross repositories),
--    with the committer time that orders deployments of equal time, and the author and committer
--    times every deployment_changes row carries (migration 1601: the metrics' lead times read
--    them there instead of joining a million changes with commits).
CREATE OR REPLACE TEMP TABLE _attr_nodes AS
SELECT repo, CAST(row_number() OVER () - 1 AS INTEGER) AS i, sha, parents[1] AS first_parent,
       CASE WHEN len(parents) > 1 THEN parents[2:] END AS more_parents,
       epoch_us(committer_time) AS committed_us, author_time, committer_time
FROM commits WHERE repo IN (SELECT DISTINCT repository FROM _attr_shipped WHERE repository IS NOT NULL)
-- statement
-- 4. Each commit's first parent, a row per commit in number order (-1: none collected). Rows,
--    not one list: fetchall() turned 100k of them into Python ints in about 20 ms, the list
--    value about 10 ms slower.
SELECT coalesce(p.i, -1)
FROM _attr_nodes c
LEFT JOIN _attr_nodes p ON p.repo = c.repo AND p.sha = c.first_parent
ORDER BY c.i
-- statement
-- 5. The further parents of merge commits, as (child, parent) lists in parent order.
WITH further AS (
    SELECT repo, i, unnest(more_parents) AS psha, generate_subscripts(more_parents, 1) AS pos
    FROM _attr_nodes WHERE more_parents IS NOT NULL
)
SELECT list(c.i ORDER BY c.i, c.pos), list(p.i ORDER BY c.i, c.pos)
FROM further c
JOIN _attr_nodes p ON p.repo = c.repo AND p.sha = c.psha
-- statement
-- 6. _attr_resolved: each distinct (repository, revision) the shipped rows name (their revision
--    and their raw revision; step 2b's candidates) resolved within its repository: an exact sha, else a tag name, else
--    the trimmed lower-case sha, else a unique abbreviated sha (4-40 hex digits once stripped of
--    Python's str.strip() whitespace, as RE2 classes, and lower-cased). Unresolved ones have a NULL number.
--    The commits are first narrowed to the few that can match (a semi-join on the candidates'
--    shas, on the prefixes' first 4 digits): joined whole, every statement hashed or probed all
--    of _attr_nodes for a few hundred revisions (about half this statement's 40-50 ms at 100k commits).
CREATE OR REPLACE TEMP TABLE _attr_resolved AS
WITH candidate AS (SELECT repo, rev, sha, rank FROM _attr_candidates),
asked AS (SELECT repo, rev FROM candidate WHERE rank = 1),
exact AS (
    SELECT c.repo, c.rev, arg_min(n.i, c.rank) AS i
    FROM candidate c
    JOIN (SELECT repo, sha, i FROM _attr_nodes WHERE sha IN (SELECT sha FROM candidate)) n
      ON n.repo = c.repo AND n.sha = c.sha
    GROUP BY c.repo, c.rev
),
abbreviated AS (
    SELECT a.repo, a.rev, lower(regexp_replace(a.rev, '^[\t\n\x0b\x0c\r\x1c-\x1f \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]+|[\t\n\x0b\x0c\r\x1c-\x1f \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]+$', '', 'g')) AS prefix
    FROM asked a ANTI JOIN exact e ON e.repo = a.repo AND e.rev = a.rev
),
hex_prefix AS MATERIALIZED (
    SELECT repo, rev, prefix FROM abbreviated WHERE regexp_full_match(prefix, '[0-9a-f]{4,40}')
),
unique_prefix AS (
    SELECT h.repo, h.rev, min(n.i) AS i
    FROM hex_prefix h
    JOIN (SELECT repo, sha, i FROM _attr_nodes WHERE left(sha, 4) IN (SELECT left(prefix, 4) FROM hex_prefix)) n
      ON n.repo = h.repo AND left(n.sha, 4) = left(h.prefix, 4) AND starts_with(n.sha, h.prefix)
    GROUP BY h.repo, h.rev
    HAVING count(*) = 1
)
SELECT repo, rev, i FROM exact
UNION ALL
SELECT repo, rev, i FROM unique_prefix
-- statement
-- 7. _attr_starts: each shipped row's start commit (its revision's, else its raw revision's);
--    NULL when neither resolves or the row has no repository. Only those rows keep their
--    repository and revisions (for the warning, step 10): the walks need none of them, and
--    copying them for every row cost about 0.11 s of 0.42 at 1M deployments.
CREATE OR REPLACE TEMP TABLE _attr_starts AS
WITH started AS (
    SELECT s.service, s.environment, s.id, s.repository, s.revision, s.raw_revision, s.us,
           coalesce(by_revision.i, by_raw.i) AS start
    FROM _attr_shipped s
    LEFT JOIN _attr_resolved by_revision ON by_revision.repo = s.repository AND by_revision.rev = s.revision
    LEFT JOIN _attr_resolved by_raw ON by_raw.repo = s.repository AND by_raw.rev = s.raw_revision
)
SELECT service, environment, id, us, start,
       CASE WHEN start IS NULL THEN repository END AS repository,
       CASE WHEN start IS NULL THEN revision END AS revision,
       CASE WHEN start IS NULL THEN raw_revision END AS raw_revision
FROM started
-- statement
-- 8. _attr_walks: what the walk needs, one row per (scope, start commit): the first deployment
--    to start there by (time, id). A later one would start on a commit the first visited and
--    ship nothing: a scope redeploying one revision a thousand times walks once, and a commit
--    named as a full sha, a tag and abbreviations is walked from once. _attr_deps numbers the
--    deployments that walk (dk) for the walk's integer output.
CREATE OR REPLACE TEMP TABLE _attr_walks AS
SELECT service, environment, start, arg_min(id, (us, id)) AS id, min(us) AS us
FROM _attr_starts WHERE start IS NOT NULL
GROUP BY service, environment, start
-- statement
--    The numbers follow no order (nothing depends on them, the pairs are inserted in walk
--    order whatever they are): numbering by id sorted every deployment's id.
CREATE OR REPLACE TEMP TABLE _attr_deps AS
SELECT id, CAST(row_number() OVER () - 1 AS INTEGER) AS dk
FROM (SELECT DISTINCT id FROM _attr_walks)
-- statement
-- 9. The walk's input per scope, in walk order: by time; equal times by the committer time of
--    the start commit (the older is most likely the ancestor), then deployment id. (Where a
--    scope's times are all distinct the committer time never decides.) One ordered list of
--    (deployment, start) pairs per scope, split into two lists: one sort instead of two.
WITH walk_order AS (
    SELECT w.service, w.environment, list({'dk': d.dk, 'start': w.start} ORDER BY w.us, n.committed_us, w.id) AS walk
    FROM _attr_walks w
    JOIN _attr_deps d ON d.id = w.id
    JOIN _attr_nodes n ON n.i = w.start
    GROUP BY w.service, w.environment
)
SELECT service, environment, list_transform(walk, lambda x: x.dk), list_transform(walk, lambda x: x.start)
FROM walk_order
ORDER BY service, environment
-- statement
-- 10. The deployments whose changes cannot be attributed, per scope: those without a repository
--     (first, by id), then those whose revision is not a collected commit (by repository, id),
--     each (deployment, repository) once. The count, and the first three for the warning.
--     unresolved: the rows without a start, each once (_attr_shipped repeats a multi-repository
--     deployment's first pair: the rows as a UNION of step 2 would have kept them).
WITH unresolved AS (
    SELECT DISTINCT service, environment, id, repository, revision, raw_revision, us
    FROM _attr_starts WHERE start IS NULL
),
failed AS (
    SELECT service, environment, id, repository, revision, raw_revision,
           row_number() OVER (PARTITION BY service, environment
                              ORDER BY repository IS NOT NULL, repository, id, revision, raw_revision)
               AS nth,
           count(*) OVER (PARTITION BY service, environment) AS failed
    FROM unresolved
)
SELECT service, environment, failed,
       list(CASE WHEN repository IS NULL THEN id || ' (no repository)'
                 ELSE id || ' (' || repository || '@' || coalesce(revision, 'None') || ')' END ORDER BY nth)
FROM failed WHERE nth <= 3
GROUP BY service, environment, failed
-- statement
-- 11. _attr_old: the stored rows of the selected scopes, and every row whose deployment is gone
--     (NOT IN semantics of the old orphan rule: a deployment without an id keeps every orphan row).
CREATE OR REPLACE TEMP TABLE _attr_old AS
SELECT dc.deployment_id, dc.repo, dc.sha, dc.author_time, dc.committer_time
FROM deployment_changes dc LEFT JOIN _attr_all_deps d ON d.id = dc.deployment_id
WHERE EXISTS (SELECT 1 FROM _attr_scopes s WHERE s.service = d.service AND s.environment = d.environment)
   OR d.id IS NULL AND NOT EXISTS (SELECT 1 FROM _attr_all_deps WHERE id IS NULL)
