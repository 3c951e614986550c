-- Core schema. DuckLake has no PRIMARY KEY constraints: each table's natural key is in
-- analytics/store/keys.py, and every load is an idempotent MERGE on it.
-- All times are TIMESTAMPTZ (instants); the original UTC offset of git times is kept in *_tz.

CREATE TABLE repositories (
    id                VARCHAR,   -- stable repo id, e.g. "payments-api"
    url               VARCHAR,               -- path or URL as given by the user
    local_path        VARCHAR,               -- where it was mined (cache clone for URLs)
    web_url           VARCHAR,               -- base for links: {web_url}/commit/{sha}
    is_bare           BOOLEAN NOT NULL DEFAULT FALSE,
    is_shallow        BOOLEAN NOT NULL DEFAULT FALSE,
    last_collected_at TIMESTAMPTZ
);

CREATE TABLE commits (
    repo            VARCHAR NOT NULL,
    sha             VARCHAR NOT NULL,
    parents         VARCHAR[] NOT NULL,
    author_name     VARCHAR,
    author_email    VARCHAR,
    author_time     TIMESTAMPTZ NOT NULL,
    author_tz       VARCHAR,                 -- e.g. "+0200"
    committer_name  VARCHAR,
    committer_email VARCHAR,
    committer_time  TIMESTAMPTZ NOT NULL,
    committer_tz    VARCHAR,
    subject         VARCHAR,
    is_merge        BOOLEAN NOT NULL,
    reverts_sha     VARCHAR                  -- from "This reverts commit <sha>" in the message
);

CREATE TABLE tags (
    repo         VARCHAR NOT NULL,
    name         VARCHAR NOT NULL,
    sha          VARCHAR NOT NULL,           -- the commit the tag points at (peeled)
    is_annotated BOOLEAN NOT NULL,
    tagged_at    TIMESTAMPTZ NOT NULL,       -- tagger date (annotated) or committer date (lightweight)
    tagger_name  VARCHAR
);

CREATE TABLE services (
    name VARCHAR,
    team VARCHAR
);

CREATE TABLE environments (
    name          VARCHAR,
    is_production BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE deployments (
    id              VARCHAR,     -- source-qualified, e.g. "git-tag:payments:v1.2.0"
    service         VARCHAR NOT NULL,
    environment     VARCHAR NOT NULL,
    revision        VARCHAR,                 -- resolved commit sha where known, else the raw revision
    repository      VARCHAR,                 -- repositories.id holding `revision`
    started_at      TIMESTAMPTZ,
    deployed_at     TIMESTAMPTZ NOT NULL,
    status          VARCHAR NOT NULL,
    source          VARCHAR NOT NULL,        -- git-tag, git-branch, import, github, gitlab, argocd, flux, webhook
    source_ref      VARCHAR,                 -- tag name, branch, API id, object name
    is_rollback     BOOLEAN NOT NULL DEFAULT FALSE,
    rollback_target VARCHAR,                 -- revision rolled back to
    raw_revision    VARCHAR,                 -- revision exactly as the source gave it
    revision_format VARCHAR                  -- how raw_revision was parsed ("unknown" when not)
);

-- Which commits a deployment shipped: each commit belongs to the first deployment (by time)
-- of the same service and environment whose revision contains it.
CREATE TABLE deployment_changes (
    deployment_id VARCHAR NOT NULL,
    repo          VARCHAR NOT NULL,
    sha           VARCHAR NOT NULL
);

CREATE TABLE pull_requests (
    repo             VARCHAR NOT NULL,       -- repositories.id (or owner/name when no clone)
    number           INTEGER NOT NULL,
    provider         VARCHAR NOT NULL,       -- github | gitlab
    title            VARCHAR,
    author           VARCHAR,
    state            VARCHAR,
    created_at       TIMESTAMPTZ,
    first_commit_at  TIMESTAMPTZ,
    first_review_at  TIMESTAMPTZ,
    merged_at        TIMESTAMPTZ,
    closed_at        TIMESTAMPTZ,
    merge_commit_sha VARCHAR,
    base_ref         VARCHAR,
    head_ref         VARCHAR,
    labels           VARCHAR[],
    commit_shas      VARCHAR[],
    url              VARCHAR,
    updated_at       TIMESTAMPTZ
);

CREATE TABLE incidents (
    id          VARCHAR,
    service     VARCHAR,
    environment VARCHAR,
    created_at  TIMESTAMPTZ NOT NULL,
    resolved_at TIMESTAMPTZ,                 -- NULL while open
    title       VARCHAR,
    root_cause  VARCHAR,                     -- commit sha, revision or deployment id
    source      VARCHAR NOT NULL,            -- import, github, gitlab, webhook
    source_ref  VARCHAR,
    url         VARCHAR,
    labels      VARCHAR[]
);

-- Every reconciler observation (sync, failed sync, health change, rollback, drift...), kept for audit.
CREATE TABLE reconciler_events (
    id              VARCHAR,     -- natural key: hash of reconciler/object/type/revision/time
    reconciler      VARCHAR NOT NULL,        -- argocd | flux
    kind            VARCHAR NOT NULL,        -- Application | Kustomization | HelmRelease
    namespace       VARCHAR,
    name            VARCHAR NOT NULL,
    service         VARCHAR,
    environment     VARCHAR,
    event_type      VARCHAR NOT NULL,        -- sync | sync_failed | rollback | health | drift | reconcile ...
    reason          VARCHAR,
    message         VARCHAR,
    revision        VARCHAR,
    raw_revision    VARCHAR,
    revision_format VARCHAR,
    started_at      TIMESTAMPTZ,
    occurred_at     TIMESTAMPTZ NOT NULL,
    status          VARCHAR,
    source          VARCHAR NOT NULL,        -- cluster | kubectl-dump | webhook | watch
    deployment_id   VARCHAR,
    payload         JSON,
    -- What identifies the desired state a reconciler applied: the commit for Argo CD and Flux
    -- Kustomizations, the Helm release version for HelmReleases. A new value is a new deployment;
    -- the same value again is a re-sync. (In the table from the start: DuckLake cannot flush rows
    -- inlined in its catalog into a table that gained a column later.)
    state_key       VARCHAR
);

-- Incremental watermarks, one row per (source, key).
CREATE TABLE collector_state (
    source     VARCHAR NOT NULL,             -- e.g. "git:payments-api", "github:org/repo"
    key        VARCHAR NOT NULL,             -- e.g. "ref_tips", "updated_at"
    value      VARCHAR,
    updated_at TIMESTAMPTZ NOT NULL
);

-- One row per committed collection run (failed runs are recorded after their rollback).
CREATE TABLE collection_runs (
    id           VARCHAR,
    source       VARCHAR NOT NULL,
    target       VARCHAR,
    started_at   TIMESTAMPTZ NOT NULL,
    finished_at  TIMESTAMPTZ,
    status       VARCHAR NOT NULL,           -- ok | failed
    rows_written BIGINT NOT NULL DEFAULT 0,
    message      VARCHAR
);

-- Data-quality notes shown on the dashboard's Data health page.
CREATE TABLE data_warnings (
    source     VARCHAR NOT NULL,
    target     VARCHAR NOT NULL,
    kind       VARCHAR NOT NULL,             -- shallow_clone | unknown_revision_format | ...
    detail     VARCHAR NOT NULL,
    count      BIGINT NOT NULL DEFAULT 1,
    updated_at TIMESTAMPTZ NOT NULL
);
