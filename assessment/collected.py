"""Evidence from data the other collectors stored: reconciler drift corrections and PR reviews.

Queries live in ``assessment/sql``. Tables that are missing or empty simply give no evidence,
so an assessment works on a fresh database too (or with no database at all: ``con`` is None).
Only data about the assessed repositories counts: pull requests of those repositories, and
reconciler events of the objects that deploy from them (``assessed_objects.sql``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from analytics.store.literals import execute
from assessment.detectors import Finding

SQL_DIR = Path(__file__).resolve().parent / "sql"
REVIEW_WINDOW = timedelta(days=90)  # "every change reviewed" is judged on recent merges only


def _query(con: duckdb.DuckDBPyConnection, name: str, params: dict[str, object]) -> list[tuple[Any, ...]]:
    sql = (SQL_DIR / f"{name}.sql").read_text()
    if "{assessed_objects}" in sql:
        sql = sql.replace("{assessed_objects}", (SQL_DIR / "assessed_objects.sql").read_text())
    try:
        return execute(con, sql, params).fetchall()  # literals: binding would import pandas
    except duckdb.CatalogException:  # table not created yet (older database)
        return []


def repository_keys(
    con: duckdb.DuckDBPyConnection | None, labels: Sequence[str], locations: Sequence[str]
) -> list[str]:
    """The assessed sources as the store names them: their labels, plus the ids of collected
    repositories whose URL or local path is one of ``locations`` (so ``collect git --repo-id X``
    of the same folder still matches)."""
    keys = list(dict.fromkeys(labels))
    if con is None or not locations:
        return keys
    try:
        rows = execute(
            con,
            "SELECT DISTINCT id FROM repositories "
            "WHERE list_contains($places, url) OR list_contains($places, local_path)",
            {"places": list(locations)},
        ).fetchall()
    except duckdb.CatalogException:
        return keys
    return list(dict.fromkeys([*keys, *(str(r[0]) for r in rows)]))


def collected_findings(
    con: duckdb.DuckDBPyConnection | None, repos: Sequence[str], moments: Sequence[datetime]
) -> dict[datetime, list[Finding]]:
    """Evidence from collected data about ``repos`` (see :func:`repository_keys`) up to each of
    ``moments``: three queries for a whole monthly history, not three per month (each is a
    catalog round trip on DuckLake). Keys are the moments as given."""
    given = {_utc(m): m for m in moments}
    found: dict[datetime, list[Finding]] = {m: [] for m in moments}
    if con is None or not moments:
        return found
    scope = {"moments": list(given), "repos": list(repos)}
    for when, rec, kind, ns, name, drifts, corrected, last_drift, last_fix in _query(
        con, "drift_corrections", scope
    ):
        obj = f"{rec} {kind} {ns + '/' if ns else ''}{name}"
        out = found[given[_utc(when)]]
        if corrected:
            out.append(
                Finding(
                    "collected.drift-corrected",
                    f"{corrected} of {drifts} drifts corrected by a later sync (last {last_fix})",
                    object=obj,
                )
            )
        if drifts > corrected:
            out.append(
                Finding(
                    "collected.drift-uncorrected",
                    f"{drifts - corrected} drifts not followed by a sync (last drift {last_drift})",
                    object=obj,
                )
            )
    for when, rec, kind, ns, name, syncs, _last in _query(con, "reconciler_activity", scope):
        found[given[_utc(when)]].append(
            Finding(
                "collected.reconciler",
                f"{syncs} syncs recorded by {rec}",
                object=f"{rec} {kind} {ns + '/' if ns else ''}{name}",
            )
        )
    params = {**scope, "window": REVIEW_WINDOW}
    for when, repo, merged, reviewed, unreviewed in _query(con, "pull_request_reviews", params):
        as_of = given[_utc(when)]
        if merged == reviewed:
            found[as_of].append(
                Finding(
                    "collected.all-prs-reviewed",
                    f"all {merged} PRs merged in the {REVIEW_WINDOW.days} days before {as_of:%Y-%m-%d} "
                    "were reviewed before merge",
                    object=f"pull_requests {repo}",
                )
            )
        else:
            numbers = ", ".join(f"#{n}" for n in list(unreviewed or [])[:10])
            found[as_of].append(
                Finding(
                    "collected.unreviewed-prs",
                    f"{merged - reviewed} of {merged} merged PRs had no review before merge ({numbers})",
                    object=f"pull_requests {repo}",
                )
            )
    return found


def _utc(moment: datetime) -> datetime:
    """A moment as an aware UTC datetime: DuckDB answers TIMESTAMPTZ in its session time zone,
    and a naive moment is taken to be UTC, as the store's timestamps are."""
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
