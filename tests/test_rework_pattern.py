"""Hotfix rework detection with the default and a configured pattern (real DuckDB store).

The default pattern gets a cheap pre-test (every match contains 'hot'); a configured pattern must
not be narrowed by it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from analytics.config import Config, IncidentRules
from analytics.metrics.engine import apply_settings
from analytics.store.connection import open_reader, open_writer

SUBJECTS = {  # sha: subject, each shipped by its own deployment D<sha>
    "c0": "init",
    "c1": "HotFix: null total in cart",
    "c2": "URGENT: login loop",
    "c3": "Merge branch 'hotfix/refund-rounding'",
    "c4": "feat: shot tracking",   # contains 'hot' but is no hotfix
}


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rework") / "store.duckdb"
    start = datetime(2026, 4, 1, tzinfo=UTC)
    with open_writer(path, source="test-fixture") as w:
        w.upsert("commits", [
            {"repo": "app", "sha": sha, "parents": [], "author_time": start, "committer_time": start,
             "is_merge": False, "subject": subject}
            for sha, subject in SUBJECTS.items()
        ])
        w.upsert("deployments", [
            {"id": f"D{sha}", "service": "app", "environment": "production", "repository": "app",
             "revision": sha, "deployed_at": start.replace(day=2 + n), "status": "success",
             "source": "test", "source_ref": f"D{sha}"}
            for n, sha in enumerate(SUBJECTS)
        ])
        w.upsert("deployment_changes", [{"deployment_id": f"D{sha}", "repo": "app", "sha": sha}
                                        for sha in SUBJECTS])
    return path


def rework(db: Path, config: Config) -> list[str]:
    con = open_reader(db)
    try:
        apply_settings(con, config)
        rows = con.execute("SELECT id FROM deployment_outcomes WHERE is_rework ORDER BY id").fetchall()
    finally:
        con.close()
    return [r[0] for r in rows]


def test_default_pattern_any_case_and_hotfix_branches(db: Path) -> None:
    assert rework(db, Config()) == ["Dc1", "Dc3"]


def test_configured_pattern_without_the_default_text_still_matches(db: Path) -> None:
    urgent = Config(incidents=IncidentRules(hotfix_pattern=r"(?i)^urgent:"))
    assert rework(db, urgent) == ["Dc2"]
    shots = Config(incidents=IncidentRules(hotfix_pattern=r"\bshot\b"))
    assert rework(db, shots) == ["Dc4"]
