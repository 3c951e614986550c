"""Data-health listings: collection runs, watermarks, row counts and the data-quality findings."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analytics.store.connection import CATALOG
from dashboards.queries import frame, relations

COUNTED_TABLES = (
    "repositories", "commits", "tags", "services", "environments", "deployments", "deployment_changes",
    "pull_requests", "incidents", "reconciler_events",
)


def last_collections(db: Path) -> pd.DataFrame:
    """Per source and target: the latest run, its status, and when it last succeeded."""
    return frame(
        db,
        """
        WITH ranked_runs AS (
            SELECT *, row_number() OVER (PARTITION BY source, target ORDER BY started_at DESC) AS n
            FROM collection_runs
        ),
        last_ok AS (
            SELECT source, target, max(finished_at) AS last_success_at
            FROM collection_runs WHERE status = 'ok' GROUP BY source, target
        )
        SELECT r.source, r.target, r.started_at AS last_run_at, r.status AS last_status,
               r.rows_written, o.last_success_at, r.message
        FROM ranked_runs r LEFT JOIN last_ok o USING (source, target)
        WHERE r.n = 1
        ORDER BY r.started_at DESC
        """,
    )


def run_history(db: Path) -> pd.DataFrame:
    return frame(
        db,
        """
        SELECT source, target, started_at, status, rows_written, coalesce(message, '') AS message
        FROM collection_runs ORDER BY started_at
        """,
    )


def watermarks(db: Path) -> pd.DataFrame:
    return frame(db, "SELECT source, key, value, updated_at FROM collector_state ORDER BY source, key")


def row_counts(db: Path) -> pd.DataFrame:
    """Rows as stored: a service, environment or repository that two writers registered at once
    counts twice here until the next write cleans it up, although every other page shows it once
    (the readers' one-row views); the page is where such a store shows itself."""
    have = relations(db)
    parts = [f"SELECT '{t}' AS table_name, count(*) AS row_count FROM {CATALOG}.main.\"{t}\""
             for t in COUNTED_TABLES if t in have]
    return frame(db, "SELECT * FROM (" + " UNION ALL ".join(parts) + ") ORDER BY table_name")


def warnings(db: Path) -> pd.DataFrame:
    return frame(
        db,
        "SELECT kind, source, target, detail, count, updated_at FROM data_warnings"
        " ORDER BY kind, source, detail",
    )


def unattributed_incidents(db: Path) -> pd.DataFrame | None:
    if "incident_attribution" not in relations(db):
        return None
    return frame(
        db,
        """
        SELECT incident_id AS id, service, environment, created_at, resolved_at, title, root_cause,
               root_cause_unmatched, url
        FROM incident_attribution WHERE attribution_rule = 'unattributed' ORDER BY created_at DESC
        """,
    )


def negative_lead_times(db: Path) -> pd.DataFrame | None:
    """Changes left out of lead time because they were deployed before they were written."""
    if "change_lead_times" not in relations(db):
        return None
    return frame(
        db,
        """
        SELECT deployment_id, service, environment, repo, sha, start_at, deployed_at, lead_hours, start_source
        FROM change_lead_times WHERE is_negative AND NOT is_baseline ORDER BY lead_hours
        """,
    )


def shallow_repositories(db: Path) -> pd.DataFrame:
    return frame(
        db,
        """
        SELECT id AS repository, url, local_path, last_collected_at FROM repositories WHERE is_shallow
        ORDER BY id
        """,
    )


def unknown_revisions(db: Path) -> pd.DataFrame:
    """Deployments and reconciler events whose revision could not be parsed."""
    return frame(
        db,
        """
        SELECT 'deployment' AS record, id, service, environment, raw_revision, source, deployed_at AS seen_at
        FROM deployments WHERE revision_format = 'unknown'
        UNION ALL
        SELECT 'reconciler event', id, service, environment, raw_revision, source, occurred_at
        FROM reconciler_events WHERE revision_format = 'unknown'
        ORDER BY seen_at DESC
        """,
    )
