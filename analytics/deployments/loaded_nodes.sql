-- Attribution's numbered commits (_attr_nodes, attribution.sql step 3: the same columns, the same
-- expressions) for commits being loaded, added chunk by chunk from what was loaded (the source
-- below), numbered on from the count so far. analytics/deployments/loaded_nodes.py says when they stand for
-- step 3's read of the commits table.
SELECT repo, CAST({offset} + row_number() OVER () - 1 AS INTEGER) AS i, sha, parents[1] AS first_parent,
       CASE WHEN len(parents) > 1 THEN parents[2:] END AS more_parents,
       epoch_us(committer_time) AS committed_us, author_time, committer_time
FROM {source}
-- statement
-- The parent edges of one chunk's commits (numbers {offset} on) and those of earlier chunks whose
-- parent was not found yet (_attr_loaded_open), each matched against this chunk's commits only:
-- attribution.sql steps 4 and 5 (first parents, further parents of merges) a chunk at a time.
-- pos 0 is the first parent, pos k the k-th further parent (step 5's generate_subscripts).
-- Every commit of the load has the same repo, so the sha alone matches, as step 4's (repo, sha).
-- parent NULL: not in this chunk (a later chunk, an earlier one, or not loaded at all).
CREATE OR REPLACE TEMP TABLE _attr_loaded_step AS
WITH chunk AS (
    SELECT i, sha, first_parent, more_parents FROM _attr_loaded_nodes WHERE i >= {offset}
),
edges AS (
    SELECT child, pos, psha FROM _attr_loaded_open
    UNION ALL
    SELECT i AS child, 0 AS pos, first_parent AS psha FROM chunk WHERE first_parent IS NOT NULL
    UNION ALL
    SELECT i, generate_subscripts(more_parents, 1), unnest(more_parents) FROM chunk
    WHERE more_parents IS NOT NULL
)
SELECT e.child, e.pos, e.psha, c.i AS parent
FROM edges e LEFT JOIN chunk c ON c.sha = e.psha
-- statement
-- The edges still open after this chunk.
CREATE OR REPLACE TEMP TABLE _attr_loaded_open AS
SELECT child, pos, psha FROM _attr_loaded_step WHERE parent IS NULL
-- statement
-- The edges this chunk closed, for the graph kept in Python.
SELECT child, pos, parent FROM _attr_loaded_step WHERE parent IS NOT NULL
-- statement
-- Once every chunk is in: the edges still open whose parent a chunk before their child's holds
-- (git's date order can list a parent first); the rest name commits that were not loaded.
SELECT o.child, o.pos, n.i FROM _attr_loaded_open o JOIN _attr_nodes n ON n.sha = o.psha
