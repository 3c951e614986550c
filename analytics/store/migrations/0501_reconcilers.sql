-- Reconciler collection (issue 5).


-- Every reconciler object seen, with how it was mapped to a service and an environment.
CREATE TABLE reconciler_objects (
    reconciler  VARCHAR NOT NULL,            -- argocd | flux
    kind        VARCHAR NOT NULL,            -- Application | Kustomization | HelmRelease
    namespace   VARCHAR NOT NULL,
    name        VARCHAR NOT NULL,
    service     VARCHAR NOT NULL,
    environment VARCHAR NOT NULL,
    mapped_by   VARCHAR NOT NULL,            -- rule:<n> | label:<key> | annotation:<key> | name-suffix | destination | default
    repository  VARCHAR,                     -- repositories.id of the config repo, when known
    source_url  VARCHAR,                     -- repoURL / sourceRef as the object gives it
    last_seen   TIMESTAMPTZ NOT NULL
);

-- Image references found in each commit of a GitOps config repo (pydriller), per service/env.
CREATE TABLE config_image_changes (
    config_repo VARCHAR NOT NULL,            -- repositories.id of the config repo
    commit_sha  VARCHAR NOT NULL,
    committed_at TIMESTAMPTZ NOT NULL,
    path        VARCHAR NOT NULL,            -- file in the config repo
    service     VARCHAR NOT NULL,
    environment VARCHAR NOT NULL,            -- '' when the path names no environment
    image       VARCHAR,                     -- image name, when the form holds one
    tag         VARCHAR NOT NULL,
    app_repo    VARCHAR,                     -- repositories.id the tag resolved in
    app_sha     VARCHAR                      -- full app commit sha, NULL when unresolved
);
