"""What one deployment shipped and what happened to it: changes, PRs, incidents, reconciler events.

Relations other issues add (failure signals, incident attribution) are looked up by name so the
page works before and after they land.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dashboards.queries import frame, relations
from dashboards.source import data_stamp, reader

SIGNAL_VIEWS = ("failure_signals",)
ATTRIBUTION_VIEWS = ("incident_attribution",)


def first_relation(db: Path, names: tuple[str, ...]) -> str | None:
    have = relations(db)
    return next((n for n in names if n in have), None)


def changes(db: Path, deployment_id: str) -> pd.DataFrame:
    """The deployment's changes as ``gitops-dora changes --deployment ID`` lists them (the same
    query: :func:`analytics.metrics.audit.audit_rows`), with each commit's author and link."""
    audit = pd.DataFrame(_audit(str(db), data_stamp(db), deployment_id), columns=list(AUDIT_SHOWN))
    if audit.empty:
        return audit
    extra = frame(
        db,
        """
        SELECT c.repo, c.sha, c.author_name,
               CASE WHEN r.web_url IS NOT NULL THEN r.web_url || '/commit/' || c.sha END AS commit_url
        FROM deployment_changes dc
        JOIN commits c ON c.repo = dc.repo AND c.sha = dc.sha
        LEFT JOIN repositories r ON r.id = c.repo
        WHERE dc.deployment_id = $id
        """,
        id=deployment_id,
    )
    shown = audit.merge(extra, on=["repo", "sha"], how="left")
    # what the audit adds first, so a 1440 px page shows it without scrolling sideways
    return shown[["repo", "sha", "lead_hours", "outcome", "start_source", "subject", "author_name",
                  "author_at", "start_at", "commit_url"]]


AUDIT_SHOWN = ("repo", "sha", "subject", "author_at", "start_at", "start_source", "lead_hours", "outcome")


@st.cache_data(show_spinner=False, max_entries=256)
def _audit(db: str, stamp: int, deployment_id: str) -> list[tuple[Any, ...]]:
    """The audit rows of one deployment on the pinned snapshot, with the config's settings (which
    the shared reader holds from its opening)."""
    del stamp  # part of the cache key only
    from analytics.metrics.audit import audit_rows

    with reader(Path(db)) as con:
        rows = audit_rows(con, deployments=[deployment_id])
    return [tuple(row[c] for c in AUDIT_SHOWN) for row in rows]


def pull_requests(db: Path, deployment_id: str) -> pd.DataFrame:
    """PRs whose merge commit or any listed commit this deployment shipped."""
    return frame(
        db,
        """
        WITH shipped AS (SELECT repo, sha FROM deployment_changes WHERE deployment_id = $id)
        SELECT DISTINCT p.repo, p.number, p.title, p.author, p.created_at, p.merged_at, p.url
        FROM pull_requests p
        JOIN shipped s ON s.repo = p.repo
         AND (s.sha = p.merge_commit_sha OR list_contains(coalesce(p.commit_shas, []), s.sha))
        ORDER BY p.number
        """,
        id=deployment_id,
    )


def incidents(db: Path, deployment_id: str) -> pd.DataFrame:
    view = first_relation(db, ATTRIBUTION_VIEWS)
    if view is not None:
        return frame(
            db,
            f"""
            SELECT incident_id AS id, title, created_at, resolved_at, attribution_rule, root_cause, url
            FROM "{view}" WHERE deployment_id = $id ORDER BY created_at
            """,
            id=deployment_id,
        )
    return frame(
        db,
        "SELECT id, title, created_at, resolved_at, root_cause, url FROM incidents WHERE root_cause = $id",
        id=deployment_id,
    )


def reconciler_events(db: Path, deployment_id: str) -> pd.DataFrame:
    return frame(
        db,
        """
        SELECT occurred_at, reconciler, kind, namespace, name, event_type, status, reason, message, revision
        FROM reconciler_events WHERE deployment_id = $id ORDER BY occurred_at
        """,
        id=deployment_id,
    )


def failure_signals(db: Path, deployment_id: str) -> pd.DataFrame | None:
    """Why deployments are marked failed (one row per signal), or None before the view exists."""
    view = first_relation(db, SIGNAL_VIEWS)
    if view is None:
        return None
    return frame(
        db,
        f"""SELECT signal, array_to_string(evidence, ', ') AS evidence, signal_at, recovered_at, restored_by
        FROM "{view}" WHERE deployment_id = $id ORDER BY signal_at""",
        id=deployment_id,
    )
