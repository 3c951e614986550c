-- Attribution's numbered commits (_attr_nodes, attribution.sql step 3: the same columns, the same
-- expressions) for commits being loaded, added chunk by chunk from what was loaded (the source
-- below), numbered on from the count so far. analytics/deployments/loaded_nodes.py says when they stand for
-- step 3's read of the commits table.
SELECT repo, CAST({offset} + row_number() OVER () - 1 AS INTEGER) AS i, sha, parents[1] AS first_parent,
       CASE WHEN len(parents) > 1 THEN parents[2:] END AS more_parents,
       epoch_us(committer_time) AS committed_us, author_time, committer_time
FROM {source}
-- statement
-- The parent edges of one chunk's commits (numbers {offset} on) but for a first parent that is
-- the commit numbered next (most of them, in git's order: those need no sha matched), and those
-- of earlier chunks whose parent was not found yet (_attr_loaded_open), each matched against
-- this chunk's commits only: attribution.sql steps 4 and 5 (first parents, further parents of
-- merges) a chunk at a time. pos 0 is the first parent (psha NULL: a root), pos k the k-th
-- further parent (step 5's generate_subscripts). Every commit of the load has the same repo, so
-- the sha alone matches, as step 4's (repo, sha). parent NULL: not in this chunk (a later chunk,
-- an earlier one, or not loaded at all).
CREATE OR REPLACE TEMP TABLE _attr_loaded_step AS
WITH chunk AS (
    SELECT i, sha, first_parent, more_parents FROM _attr_loaded_nodes WHERE i >= {offset}
),
edges AS (
    SELECT child, pos, psha FROM _attr_loaded_open
    UNION ALL
    SELECT c.i AS child, 0 AS pos, c.first_parent AS psha
    FROM chunk c LEFT JOIN chunk next ON next.i = c.i + 1
    WHERE next.sha IS NULL OR c.first_parent IS NULL OR next.sha <> c.first_parent
    UNION ALL
    SELECT i, generate_subscripts(more_parents, 1), unnest(more_parents) FROM chunk
    WHERE more_parents IS NOT NULL
)
SELECT e.child, e.pos, e.psha, c.i AS parent
FROM edges e LEFT JOIN chunk c ON c.sha = e.psha
-- statement
-- The edges still open after this chunk.
CREATE OR REPLACE TEMP TABLE _attr_loaded_open AS
SELECT child, pos, psha FROM _attr_loaded_step WHERE parent IS NULL AND psha IS NOT NULL
-- statement
-- The edges this chunk closed (a root's first parent with a NULL parent), for the graph kept in Python.
SELECT child, pos, parent FROM _attr_loaded_step WHERE parent IS NOT NULL OR psha IS NULL
-- statement
-- Once every chunk is in: the edges still open, matched against every commit (git's date order
-- can list a parent before its child); a NULL parent names a commit that was not loaded.
SELECT o.child, o.pos, n.i FROM _attr_loaded_open o LEFT JOIN _attr_nodes n ON n.sha = o.psha
