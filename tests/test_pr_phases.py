"""PR phase hours in the SQL views: a review after the merge (or none) is no review."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from analytics.store import open_reader, open_writer


def _t(hour: int) -> datetime:
    return datetime(2026, 3, 2, hour, tzinfo=UTC)


def test_review_after_merge_leaves_pickup_and_review_null(tmp_path: Path) -> None:
    db = tmp_path / "prs.duckdb"
    base = {"repo": "app", "provider": "github", "state": "closed", "labels": [], "commit_shas": []}
    with open_writer(db, source="test") as session:
        session.upsert("pull_requests", [
            # reviewed in time: first commit 01:00, opened 03:00, review 07:00, merged 10:00
            {**base, "number": 1, "merge_commit_sha": "a" * 40, "first_commit_at": _t(1),
             "created_at": _t(3), "first_review_at": _t(7), "merged_at": _t(10)},
            # reviewed only after the merge (11:00 > 10:00): no review
            {**base, "number": 2, "merge_commit_sha": "b" * 40, "first_commit_at": _t(2),
             "created_at": _t(4), "first_review_at": _t(11), "merged_at": _t(10)},
            # never reviewed
            {**base, "number": 3, "merge_commit_sha": "c" * 40, "first_commit_at": _t(5),
             "created_at": _t(6), "first_review_at": None, "merged_at": _t(8)},
        ])
    con = open_reader(db)
    rows = con.execute(
        "SELECT pr_number, coding_hours, pickup_hours, review_hours FROM change_pull_requests"
        " ORDER BY pr_number"
    ).fetchall()
    con.close()
    assert rows == [
        (1, 2.0, 4.0, 3.0),     # coding 01->03, pickup 03->07, review 07->10
        (2, 2.0, None, None),   # coding 02->04; the late review does not count
        (3, 1.0, None, None),   # coding 05->06; no review at all
    ]
