"""Storing a monthly history writes every month's capability and level rows once, in one batch."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.store_query import store_reader
from tests.test_assess import assess
from tests.test_assess_history import adopting_flux


def test_every_month_and_the_point_keep_exactly_their_own_rows_across_reruns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, _ = adopting_flux(tmp_path / "web-config")
    db = tmp_path / "db.duckdb"
    first = assess(capsys, db, str(repo.path), "--history", "monthly", "--store")
    assess(capsys, db, str(repo.path), "--history", "monthly", "--store")
    capabilities = len(first["capabilities"])
    levels = len(first["levels"])
    con = store_reader(db)
    try:
        ids = [r[0] for r in con.execute("SELECT id FROM maturity_assessments ORDER BY id").fetchall()]
        assert len(ids) == len(first["history"]) + 1  # five months and today's point
        per_capability = dict(con.execute(
            "SELECT assessment_id, count(*) FROM maturity_capability_status GROUP BY ALL").fetchall())
        per_level = dict(con.execute(
            "SELECT assessment_id, count(*) FROM maturity_level_progress GROUP BY ALL").fetchall())
        point_statuses = dict(con.execute(
            "SELECT capability, status FROM maturity_capability_status s JOIN maturity_assessments a "
            "ON a.id = s.assessment_id WHERE a.kind = 'point'").fetchall())
    finally:
        con.close()
    assert per_capability == {i: capabilities for i in ids}
    assert per_level == {i: levels for i in ids}
    assert point_statuses == {c["id"]: c["status"] for c in first["capabilities"]}
