-- Issue 15: deployments that ship several repositories, and DevLake's project mapping.
--
-- deployment_revisions: every (repository, revision) a deployment shipped when it shipped more
-- than one (one pipeline deploying several repositories, a DevLake cicd_deployment_id with
-- commits of several repos). deployments.repository/revision keep the first pair, so readers
-- that know one repository per deployment go on working; attribution walks every pair.
CREATE TABLE deployment_revisions (
    deployment_id   VARCHAR NOT NULL,
    repository      VARCHAR NOT NULL,        -- repositories.id holding `revision`
    revision        VARCHAR NOT NULL,        -- resolved sha where known, else as given
    raw_revision    VARCHAR,
    revision_format VARCHAR
);

-- DevLake's project_mapping table as imported: which project holds which repo, board or CI/CD
-- scope. A DevLake project is a service here; rows keep their DevLake scopes
-- (devlake_row_scopes), so a mapping imported after them still moves them to their project.
CREATE TABLE devlake_project_mapping (
    project_name VARCHAR NOT NULL,
    table_name   VARCHAR NOT NULL,           -- repos | boards | cicd_scopes
    mapped_id    VARCHAR NOT NULL            -- project_mapping.row_id (row_id is DuckLake's own)
);

CREATE TABLE devlake_row_scopes (
    record_kind VARCHAR NOT NULL,             -- deployment | incident
    record_id  VARCHAR NOT NULL,             -- deployments.id or incidents.id
    scope_table VARCHAR NOT NULL,            -- repos | boards | cicd_scopes
    scope_id   VARCHAR NOT NULL,
    fallback_service VARCHAR                 -- the service used while no project maps the row
);
