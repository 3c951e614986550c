"""Evidence from data the other collectors stored: reconciler drift corrections and PR reviews.

Queries live in ``assessment/sql``. Tables that are missing or empty simply give no evidence,
so an assessment works on a fresh database too.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from assessment.detectors import Finding

SQL_DIR = Path(__file__).resolve().parent / "sql"
REVIEW_WINDOW = timedelta(days=90)  # "every change reviewed" is judged on recent merges only


def _query(con: duckdb.DuckDBPyConnection, name: str, params: dict[str, object]) -> list[tuple[Any, ...]]:
    sql = (SQL_DIR / f"{name}.sql").read_text()
    try:
        return con.execute(sql, params).fetchall()
    except duckdb.CatalogException:  # table not created yet (older database)
        return []


def collected_findings(
    con: duckdb.DuckDBPyConnection, repos: Sequence[str], as_of: datetime
) -> list[Finding]:
    found: list[Finding] = []
    for rec, kind, ns, name, drifts, corrected, last_drift, last_fix in _query(
        con, "drift_corrections", {"as_of": as_of}
    ):
        obj = f"{rec} {kind} {ns + '/' if ns else ''}{name}"
        if corrected:
            found.append(
                Finding(
                    "collected.drift-corrected",
                    f"{corrected} of {drifts} drifts corrected by a later sync (last {last_fix})",
                    object=obj,
                )
            )
        if drifts > corrected:
            found.append(
                Finding(
                    "collected.drift-uncorrected",
                    f"{drifts - corrected} drifts not followed by a sync (last drift {last_drift})",
                    object=obj,
                )
            )
    for rec, kind, ns, name, syncs, _last in _query(con, "reconciler_activity", {"as_of": as_of}):
        found.append(
            Finding(
                "collected.reconciler",
                f"{syncs} syncs recorded by {rec}",
                object=f"{rec} {kind} {ns + '/' if ns else ''}{name}",
            )
        )
    params = {"repos": list(repos), "since": as_of - REVIEW_WINDOW, "as_of": as_of}
    for repo, merged, reviewed, unreviewed in _query(con, "pull_request_reviews", params):
        if merged == reviewed:
            found.append(
                Finding(
                    "collected.all-prs-reviewed",
                    f"all {merged} PRs merged in the {REVIEW_WINDOW.days} days before {as_of:%Y-%m-%d} "
                    "were reviewed before merge",
                    object=f"pull_requests {repo}",
                )
            )
        else:
            numbers = ", ".join(f"#{n}" for n in list(unreviewed or [])[:10])
            found.append(
                Finding(
                    "collected.unreviewed-prs",
                    f"{merged - reviewed} of {merged} merged PRs had no review before merge ({numbers})",
                    object=f"pull_requests {repo}",
                )
            )
    return found
