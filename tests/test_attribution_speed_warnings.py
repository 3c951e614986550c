"""Attribution's unresolved-revision warnings when they are only deleted after a count found some
(analytics/deployments/attribution.py, ``_warn_unresolved``: the DELETE is skipped when the
count of the scopes' warnings is 0, to spare a new store's collection its catalog reads).

The skip must never keep a stale warning: a recompute replaces the scope's warning (one row, the
new count), clears it once every revision resolves, and leaves other scopes' warnings and other
sources' warnings alone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from analytics.store.connection import open_writer
from tests.store_query import query
from tests.test_attribution import _cherry_pick_repo, _insert_deployments
from tests.test_git_collector import run_cli


def _at(day: int) -> datetime:
    return datetime(2024, 3, day, tzinfo=UTC)


def _warnings(db: Path) -> list[tuple[Any, ...]]:
    return query(db, "SELECT source, target, kind, detail, count FROM data_warnings "
                     "WHERE kind = 'unresolved_revision' ORDER BY ALL")


@pytest.fixture
def collected(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    repo, shas = _cherry_pick_repo(tmp_path / "shop")
    db = tmp_path / "db.duckdb"
    proc = run_cli(db, "collect", "git", str(repo.path))  # no git deployments
    assert proc.returncode == 0, proc.stderr
    return db, shas


def test_warning_is_replaced_then_cleared_and_others_are_kept(collected: tuple[Path, dict[str, str]]) -> None:
    db, s = collected
    # another source's warning of the same kind and target: attribution never deletes it
    with open_writer(db, source="test", target="warnings") as session:
        session.con.execute("INSERT INTO data_warnings VALUES ('import:other', 'shop/production', "
                            "'unresolved_revision', 'kept', 7, now())")
    _insert_deployments(db, [
        {"id": "d1", "revision": s["A"], "deployed_at": _at(6)},
        {"id": "d2", "revision": "0badc0de", "deployed_at": _at(7)},
        {"id": "s1", "revision": "feedface", "deployed_at": _at(7), "environment": "staging"},
    ])
    assert _warnings(db) == [
        ("attribution", "shop/production", "unresolved_revision",
         "deployments whose revision is not a collected commit: d2 (shop@0badc0de)", 1),
        ("attribution", "shop/staging", "unresolved_revision",
         "deployments whose revision is not a collected commit: s1 (shop@feedface)", 1),
        ("import:other", "shop/production", "unresolved_revision", "kept", 7),
    ]

    # a second unresolved deployment in production: its warning is replaced, not added to
    _insert_deployments(db, [{"id": "d3", "revision": "c0ffee00", "deployed_at": _at(8)}])
    production = [w for w in _warnings(db) if w[:2] == ("attribution", "shop/production")]
    assert production == [
        ("attribution", "shop/production", "unresolved_revision",
         "deployments whose revision is not a collected commit: d2 (shop@0badc0de), d3 (shop@c0ffee00)", 2),
    ]

    # both revisions corrected: production's warning goes; staging's (not recomputed) and the
    # other source's stay
    _insert_deployments(db, [
        {"id": "d2", "revision": s["C"], "deployed_at": _at(7)},
        {"id": "d3", "revision": s["D"], "deployed_at": _at(8)},
    ])
    assert _warnings(db) == [
        ("attribution", "shop/staging", "unresolved_revision",
         "deployments whose revision is not a collected commit: s1 (shop@feedface)", 1),
        ("import:other", "shop/production", "unresolved_revision", "kept", 7),
    ]
    changes = dict(query(db, "SELECT deployment_id, list(sha ORDER BY sha) FROM deployment_changes "
                             "GROUP BY 1"))
    assert changes == {"d1": [s["A"]], "d2": sorted([s["B"], s["C"]]), "d3": [s["D"]]}
