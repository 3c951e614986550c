-- Attribution's numbered commits (_attr_nodes, attribution.sql step 3: the same columns, the same
-- expressions) for commits being loaded, added chunk by chunk from what was loaded (the source
-- below), numbered on from the count so far. analytics/deployments/loaded_nodes.py says when they stand for
-- step 3's read of the commits table.
SELECT repo, CAST({offset} + row_number() OVER () - 1 AS INTEGER) AS i, sha, parents[1] AS first_parent,
       CASE WHEN len(parents) > 1 THEN parents[2:] END AS more_parents,
       epoch_us(committer_time) AS committed_us, author_time, committer_time
FROM {source}
