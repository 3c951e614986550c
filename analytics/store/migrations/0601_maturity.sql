-- GitOps maturity assessments (issue 6). One row per assessed state; monthly rows form the timeline
-- the dashboard draws beside the DORA trends. Natural keys make re-runs replace, not duplicate.

CREATE TABLE maturity_assessments (
    id           VARCHAR,          -- "<target>|point|<revisions>" or "<target>|monthly|<YYYY-MM>"
    target       VARCHAR NOT NULL,             -- labels of the assessed sources joined by "+"
    sources      VARCHAR[] NOT NULL,           -- PATH_OR_URL arguments as given
    revisions    VARCHAR[] NOT NULL,           -- commit per source; "worktree@<sha>" for a working tree
    kind         VARCHAR NOT NULL,
    period       VARCHAR,                      -- YYYY-MM for monthly rows (UTC months)
    as_of        TIMESTAMPTZ NOT NULL,         -- state time: newest commit assessed (monthly, --at) or run time
    assessed_at  TIMESTAMPTZ NOT NULL,
    level        INTEGER,                      -- NULL when Level 0 is not met
    answers_file VARCHAR,
    result       JSON NOT NULL                 -- the full `assess --format json` document
);

CREATE TABLE maturity_capability_status (
    assessment_id  VARCHAR NOT NULL,
    capability     VARCHAR NOT NULL,
    level          INTEGER NOT NULL,
    status         VARCHAR NOT NULL,
    answer         VARCHAR,                    -- yes | no | NULL
    conflict       VARCHAR,                    -- evidence and answer disagree: both, in words
    evidence_count INTEGER NOT NULL
);

CREATE TABLE maturity_level_progress (
    assessment_id VARCHAR NOT NULL,
    level         INTEGER NOT NULL,
    name          VARCHAR NOT NULL,
    met           BOOLEAN NOT NULL,
    progress      DOUBLE NOT NULL              -- fraction of the level's capabilities met
);
