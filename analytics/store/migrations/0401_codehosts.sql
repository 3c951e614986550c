-- Code hosts (GitHub/GitLab collectors) and the webhook receiver.

-- Every accepted webhook delivery, stored in the same transaction as the rows it produced.
-- (provider, delivery_id) makes a re-delivery a no-op.
CREATE TABLE webhook_deliveries (
    provider     VARCHAR NOT NULL,           -- github | gitlab | flux | argocd ...
    delivery_id  VARCHAR NOT NULL,           -- X-GitHub-Delivery, or "sha256:<hash of body>"
    event        VARCHAR,                    -- X-GitHub-Event / object_kind
    received_at  TIMESTAMPTZ NOT NULL,
    body_sha256  VARCHAR NOT NULL,
    payload      JSON,
    rows_written INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE releases (
    repo          VARCHAR NOT NULL,
    provider      VARCHAR NOT NULL,
    tag_name      VARCHAR NOT NULL,
    name          VARCHAR,
    target        VARCHAR,                   -- target_commitish / commit sha
    created_at    TIMESTAMPTZ,
    published_at  TIMESTAMPTZ,
    is_prerelease BOOLEAN,
    is_draft      BOOLEAN,
    url           VARCHAR
);

-- Reviews (GitHub) and approvals/notes (GitLab): first_review_at is their minimum per PR.
CREATE TABLE pr_reviews (
    repo         VARCHAR NOT NULL,
    number       INTEGER NOT NULL,
    review_id    VARCHAR NOT NULL,
    author       VARCHAR,
    state        VARCHAR,
    submitted_at TIMESTAMPTZ
);

-- Push webhooks: the before -> after chain links pushes when there is no clone.
CREATE TABLE webhook_pushes (
    repo        VARCHAR NOT NULL,
    ref         VARCHAR NOT NULL,
    before_sha  VARCHAR,
    after_sha   VARCHAR NOT NULL,
    pushed_at   TIMESTAMPTZ,
    commit_shas VARCHAR[]
);

-- Latest state of a PR/MR as a webhook reported it; merged into pull_requests without losing
-- fields only the API collector knows (first commit, commit list).
CREATE TABLE webhook_pull_requests (
    repo             VARCHAR NOT NULL,
    number           INTEGER NOT NULL,
    provider         VARCHAR NOT NULL,
    title            VARCHAR,
    author           VARCHAR,
    state            VARCHAR,
    created_at       TIMESTAMPTZ,
    merged_at        TIMESTAMPTZ,
    closed_at        TIMESTAMPTZ,
    merge_commit_sha VARCHAR,
    base_ref         VARCHAR,
    head_ref         VARCHAR,
    labels           VARCHAR[],
    url              VARCHAR,
    updated_at       TIMESTAMPTZ
);
