"""Attribution builds its TEMP tables in SQL (analytics/deployments/attribution.sql): however many
deployments and distinct revisions a scope holds, no list of them is bound from Python, so neither
pandas, pyarrow nor numpy is imported (``collect git`` runs attribution and must not pay about
0.4 s of CPU for them, tests/test_git_speed_literals.py). Here more distinct revisions than
``MAX_INLINE_ITEMS`` (the point past which a Python list was once sent as a DataFrame), in a fresh
process, with the result checked too."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from analytics.store.literals import MAX_INLINE_ITEMS
from tests.gitrepo import GitRepo
from tests.store_query import query
from tests.test_git_collector import run_cli

ROOT = Path(__file__).resolve().parent.parent

_PROBE = """
import sys
from datetime import UTC, datetime, timedelta
from analytics.store.connection import open_writer
db, shas, count = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3])
t0 = datetime(2024, 6, 1, tzinfo=UTC)
rows = [{"id": f"d{i:06d}", "service": "shop", "environment": "production", "repository": "shop",
         "revision": shas[0] if i < count - 1 else shas[1], "raw_revision": f"r-{i}",
         "deployed_at": t0 + timedelta(minutes=i), "status": "success", "source": "import"}
        for i in range(count)]
with open_writer(db, source="test", target="deployments") as session:
    session.upsert("deployments", rows)
    before = [m for m in ("pandas", "pyarrow", "numpy") if m in sys.modules]
    for name in ("pandas", "pyarrow", "numpy"):
        sys.modules[name] = None  # an import of any of them now fails
    from analytics.deployments.attribution import attribute_changes
    print("ROWS=" + str(attribute_changes(session, scopes=[("shop", "production")])))
"""


def test_many_distinct_revisions_are_attributed_without_pandas(tmp_path: Path) -> None:
    repo = GitRepo.init(tmp_path / "shop")
    first = repo.commit("one", at="2024-05-01T00:00:00+00:00")
    second = repo.commit("two", at="2024-05-02T00:00:00+00:00")
    db = tmp_path / "db.duckdb"
    assert run_cli(db, "collect", "git", str(repo.path), "--deploy-tags", "").returncode == 0
    count = MAX_INLINE_ITEMS + 500  # every one a distinct raw revision
    proc = subprocess.run([sys.executable, "-c", _PROBE, str(db), f"{first},{second}", str(count)],
                          capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert "ROWS=2" in proc.stdout
    assert query(db, "SELECT deployment_id, sha FROM deployment_changes ORDER BY sha") == sorted(
        [("d000000", first), (f"d{count - 1:06d}", second)], key=lambda r: r[1])
