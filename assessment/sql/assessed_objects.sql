-- Reconciler objects that deploy from one of the assessed repositories; the drift and activity
-- queries count only their events, so another team's Applications never lift this assessment.
-- An object belongs to a repository when its recorded config repository is one of $repos, when
-- its source URL's last path segment (without .git) is one of them, or when it applied a revision
-- that is a collected commit of one of them.
-- Parameters: $repos (labels and repository ids of the assessed sources).
SELECT o.reconciler, o.kind, o.namespace, o.name
FROM reconciler_objects o
WHERE list_contains($repos, o.repository)
   OR list_contains($repos, regexp_replace(regexp_extract(rtrim(coalesce(o.source_url, ''), '/'), '[^/:]*$'),
                                           '\.git$', ''))
UNION
SELECT e.reconciler, e.kind, coalesce(e.namespace, ''), e.name
FROM reconciler_events e
JOIN commits c ON c.sha = e.revision
WHERE list_contains($repos, c.repo)
