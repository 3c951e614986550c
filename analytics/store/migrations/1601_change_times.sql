-- Issue 16: each deployment change carries its commit's author and committer times, so the lead
-- time of a million changes is a scan of deployment_changes instead of a hash join with commits
-- on (repo, sha) (analytics/metrics/sql/views/20_change_lead_times.sql).
-- The times are a copy of commits.author_time/committer_time for (repo, sha), written by every
-- writer of deployment_changes (attribution, images, webhooks) and kept in step by attribution
-- when a commit is written again. NULL means "not known when the row was written" (its commit was
-- not collected yet, or a writer that does not fill them): readers then look the commit up, so a
-- NULL is never wrong, only slower. A non-NULL value always equals the commit's.
ALTER TABLE deployment_changes ADD COLUMN author_time TIMESTAMPTZ;
ALTER TABLE deployment_changes ADD COLUMN committer_time TIMESTAMPTZ;
-- Rows of a store written before this migration: filled from the commits collected so far.
UPDATE deployment_changes dc
SET author_time = c.author_time, committer_time = c.committer_time
FROM commits c
WHERE c.repo = dc.repo AND c.sha = dc.sha;
