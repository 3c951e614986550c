"""Each deployment change carries its commit's author and committer times (migration 1601), so the
lead times are a scan of ``deployment_changes`` instead of a join of every change with ``commits``.

The stored times are a copy, so they must never give another metric than the join they replace,
whatever order the store was written in. Every test here writes a store through the real paths
(``collect git`` on repositories the test creates, the importers, a write session that leaves the
times out, a store made by the migrations before 1601) and then checks, with :func:`in_step`:

* no change row holds times that differ from its commit's (a NULL is allowed: readers look the
  commit up; a different value would be a wrong lead time);
* each change's lead-time start in ``change_lead_times`` equals the start the old join gives
  (written out here on its own: PR first commit, else the commit's author or committer time);
* the whole metrics report (plain window and weekly trend, author and committer start) is the
  same JSON as the engine's on the same store with every stored time hidden (a TEMP copy of
  ``deployment_changes`` without them, so every change is looked up in ``commits``: the old join).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import pytest

from analytics.json_output import dumps_bytes
from analytics.metrics.engine import MetricsQuery, apply_settings, compute_metrics
from analytics.store import connection, migrations, open_writer
from analytics.store.connection import open_reader
from analytics.store.location import resolve
from tests.gitrepo import GitRepo
from tests.stability_env import copy_view_tables
from tests.stability_env import run_cli_inprocess as run_cli
from tests.store_fixture import DemoStore
from tests.store_query import query

SINCE = datetime(2020, 1, 1, tzinfo=UTC)
UNTIL = datetime(2030, 1, 1, tzinfo=UTC)

# The old join, written out: each change's start as change_lead_times defined it before 1601.
_JOINED_STARTS = """
SELECT dc.deployment_id, dc.repo, dc.sha,
       coalesce(p.first_commit_at,
                CASE WHEN getvariable('gitops_dora_lead_time_start') = 'committer'
                     THEN c.committer_time ELSE c.author_time END) AS start_at
FROM lake.main.deployment_changes dc
LEFT JOIN lake.main.commits c ON c.repo = dc.repo AND c.sha = dc.sha
LEFT JOIN pr_change_starts p ON p.repo = dc.repo AND p.sha = dc.sha
ORDER BY ALL
"""
_VIEW_STARTS = "SELECT deployment_id, repo, sha, start_at FROM change_lead_times ORDER BY ALL"
_DRIFT = """
SELECT count(*) FROM lake.main.deployment_changes dc
JOIN lake.main.commits c ON c.repo = dc.repo AND c.sha = dc.sha
WHERE dc.author_time IS NOT NULL AND dc.author_time IS DISTINCT FROM c.author_time
   OR dc.committer_time IS NOT NULL AND dc.committer_time IS DISTINCT FROM c.committer_time
"""
_MISSING = """
SELECT count(*) FROM lake.main.deployment_changes dc
JOIN lake.main.commits c ON c.repo = dc.repo AND c.sha = dc.sha
WHERE dc.author_time IS NULL OR dc.committer_time IS NULL
"""
_HIDE_TIMES = ("CREATE TEMP TABLE deployment_changes AS SELECT deployment_id, repo, sha,"
               " NULL::TIMESTAMPTZ AS author_time, NULL::TIMESTAMPTZ AS committer_time"
               " FROM lake.main.deployment_changes")


def _reports(con: duckdb.DuckDBPyConnection) -> list[bytes]:
    out = []
    for start in ("author", "committer"):
        for trend in (None, "week"):
            query_ = MetricsQuery(since=SINCE, until=UNTIL, trend=trend, lead_time_start=start)
            out.append(dumps_bytes(compute_metrics(con, query_).payload()))
    return out


class Step(NamedTuple):
    """What :func:`in_step` read: the number of changes and the rows of the caller's queries."""

    changes: int
    rows: list[list[tuple[Any, ...]]]


def in_step(db: Path, *sqls: str, filled: bool = True, reports: list[bytes] | None = None,
            params: Sequence[object] = ()) -> Step:
    """Check the store's change times against its commits (module docstring); ``filled``: every
    change whose commit is stored also has its times stored (what the writers guarantee when the
    commit was there first or attribution ran since); ``reports``: the four reports the store must
    also give (compared with the ones computed here for the stored times, rather than running the
    engine four times more on the same snapshot); ``sqls``: the caller's own reads of the store
    (with ``params``), run on the same reader first, as a reader of the snapshot without the views
    gives them (one reader open instead of two). Returns the number of changes checked and those rows."""
    con = open_reader(db)   # one reader of the newest snapshot for every query here
    try:
        read = [con.execute(sql, list(params)).fetchall() for sql in sqls]
        assert con.execute(_DRIFT).fetchall() == [(0,)]
        if filled:
            assert con.execute(_MISSING).fetchall() == [(0,)]
        rows = con.execute("SELECT count(*) FROM lake.main.deployment_changes").fetchall()[0][0]
        # the starts and the eight reports read TEMP copies of the snapshot's tables, not the catalog
        copy_view_tables(con)
        for start in ("author", "committer"):
            apply_settings(con, lead_time_start=start)
            assert con.execute(_VIEW_STARTS).fetchall() == con.execute(_JOINED_STARTS).fetchall()
        stored = _reports(con)
        con.execute("DROP TABLE temp.main.deployment_changes")
        con.execute(_HIDE_TIMES)
        joined = _reports(con)
    finally:
        con.close()
    if reports is not None:
        assert stored == reports
    assert stored == joined
    return Step(int(rows), read)


def _repo(path: Path) -> GitRepo:
    """Author and committer times differ on every commit, so a swapped or stale column shows."""
    repo = GitRepo.init(path)
    repo.commit("A", at="2024-03-01T10:00:00+01:00", committed_at="2024-03-01T11:30:00+00:00")
    repo.tag("v1.0.0")
    repo.commit("B", at="2024-03-02T08:00:00-05:00", committed_at="2024-03-02T14:00:00+00:00")
    repo.commit("C", at="2024-03-03T10:00:00+00:00", committed_at="2024-03-03T10:45:00+00:00")
    repo.tag("v1.1.0")
    return repo


def test_git_collections_first_later_and_again(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "shop")
    db = tmp_path / "store.ducklake"
    run_cli(db, "collect", "git", str(repo.path), "--deploy-tags", r"^v[0-9.]+$")
    assert in_step(db).changes == 3
    # new commits and a release: attributed on the next collection
    repo.commit("D", at="2024-03-05T09:00:00+00:00", committed_at="2024-03-05T09:20:00+00:00")
    repo.commit("E", at="2024-03-06T09:00:00+00:00", committed_at="2024-03-06T12:00:00+00:00")
    repo.tag("v1.2.0")
    run_cli(db, "collect", "git", str(repo.path), "--deploy-tags", r"^v[0-9.]+$")
    changes, [before] = in_step(db, "SELECT * FROM deployment_changes ORDER BY ALL")
    assert changes == 5
    run_cli(db, "collect", "git", str(repo.path), "--deploy-tags", r"^v[0-9.]+$")
    assert in_step(db, "SELECT * FROM deployment_changes ORDER BY ALL") == (5, [before])


def test_reconciler_deployments_linked_through_their_config_repository(demo_store: DemoStore) -> None:
    """The demo: Argo CD and Flux deployments of config-repository revisions, whose changes
    images.py links to the application commits (not attribution). The run's shared demo store
    (tests/store_fixture.py, built by the real ``gitops-dora demo``), read only."""
    db = demo_store.db
    changes, [sources] = in_step(db, "SELECT DISTINCT d.source FROM deployment_changes dc JOIN deployments d"
                                     " ON d.id = dc.deployment_id ORDER BY 1")
    assert sources == [("argocd",), ("flux",)]
    assert changes > 1000


_DEPLOYMENTS = """id,service,environment,revision,deployed_at,status,repository
pay-1,payments-api,production,{s1},2026-03-02T12:00:00Z,success,payments-api
pay-2,payments-api,production,{s3},2026-03-04T18:00:00Z,success,payments-api
"""
_COMMITS = """repository,sha,parents,author,authored_at,committed_at,message
payments-api,{s1},,Ada,2026-03-02T09:00:00Z,2026-03-02T09:30:00Z,Initial import
payments-api,{s2},{s1},Bo,2026-03-03T08:00:00Z,2026-03-03T08:10:00Z,Fix currency rounding
payments-api,{s3},{s2},Cy,{authored},2026-03-04T12:00:00+02:00,Refunds
"""


def test_deployments_imported_before_their_commits_and_commits_imported_again(tmp_path: Path) -> None:
    shas = {"s1": "1" * 40, "s2": "2" * 40, "s3": "3" * 40}
    db = tmp_path / "store.ducklake"
    deployments = tmp_path / "deployments.csv"
    deployments.write_text(_DEPLOYMENTS.format(**shas))
    commits = tmp_path / "commits.csv"
    commits.write_text(_COMMITS.format(authored="2026-03-04T10:00:00+02:00", **shas))
    run_cli(db, "import", str(deployments))
    assert query(db, "SELECT count(*) FROM deployment_changes") == [(0,)]
    run_cli(db, "import", str(commits))
    assert in_step(db).changes == 3
    # the same commit imported again with another author time: the change follows its commit
    commits.write_text(_COMMITS.format(authored="2026-03-03T23:00:00+00:00", **shas))
    run_cli(db, "import", str(commits))
    assert in_step(db, "SELECT author_time FROM deployment_changes WHERE sha = ?", params=[shas["s3"]]) == (
        3, [[(datetime(2026, 3, 3, 23, tzinfo=UTC),)]])


def test_changes_written_without_times_are_looked_up_then_filled(tmp_path: Path) -> None:
    """A writer that leaves the times out (as the tests' own fixtures do, or a row whose commit is
    not collected yet): the metrics look those commits up, and the next attribution of the scope
    stores them."""
    repo = _repo(tmp_path / "shop")
    db = tmp_path / "store.ducklake"
    run_cli(db, "collect", "git", str(repo.path), "--deploy-tags", r"^v[0-9.]+$")
    with open_writer(db, source="test") as session:
        rows = session.con.execute("SELECT deployment_id, repo, sha FROM deployment_changes").fetchall()
        session.con.execute("DELETE FROM deployment_changes")
        session.upsert("deployment_changes", [{"deployment_id": d, "repo": r, "sha": s} for d, r, s in rows])
        # and one change whose commit is not in the store at all
        session.upsert("deployment_changes", [{"deployment_id": rows[0][0], "repo": "shop", "sha": "f" * 40}])
    assert in_step(db, "SELECT count(*) FROM deployment_changes WHERE author_time IS NULL", filled=False) == (
        4, [[(4,)]])
    repo.commit("D", at="2024-03-05T09:00:00+00:00", committed_at="2024-03-05T09:20:00+00:00")
    run_cli(db, "collect", "git", str(repo.path), "--deploy-tags", r"^v[0-9.]+$")
    # attribution put back its three rows with their times and dropped the one it never made
    assert in_step(db, "SELECT count(*) FROM deployment_changes WHERE author_time IS NULL") == (3, [[(0,)]])


def _migrations_before_1601(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    older = tmp_path / "migrations"
    shutil.copytree(migrations.MIGRATIONS_DIR, older)
    for path in older.glob("*.sql"):
        if int(path.name[:4]) >= 1601:
            path.unlink()
    monkeypatch.setattr(migrations, "MIGRATIONS_DIR", older)


def _commit(sha: str, parents: list[str], authored: str, committed: str) -> dict[str, object]:
    return {"repo": "shop", "sha": sha, "parents": parents, "author_name": "a", "author_email": "a@x",
            "author_time": datetime.fromisoformat(authored), "author_tz": "+0000",
            "committer_name": "c", "committer_email": "c@x",
            "committer_time": datetime.fromisoformat(committed),
            "committer_tz": "+0000", "subject": f"commit {sha[:1]}", "is_merge": False, "reverts_sha": None}


def test_a_store_written_before_the_migration_gets_its_times(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "store.ducklake"
    _migrations_before_1601(tmp_path, monkeypatch)
    a, b, c = "a" * 40, "b" * 40, "c" * 40
    # the rows an older version wrote: changes without the columns; one change's commit is missing
    with open_writer(db, source="test") as session:
        assert "author_time" not in {
            str(r[0]) for r in session.con.execute("DESCRIBE deployment_changes").fetchall()}
        session.upsert("commits", [_commit(a, [], "2024-03-01T09:00:00+00:00", "2024-03-01T10:00:00+00:00"),
                                   _commit(b, [a], "2024-03-02T09:00:00+00:00", "2024-03-02T11:00:00+00:00")])
        session.upsert("deployments", [
            {"id": f"d{n}", "service": "shop", "environment": "production", "revision": sha,
             "repository": "shop", "deployed_at": datetime(2024, 3, 3 + n, tzinfo=UTC), "status": "success",
             "source": "test", "is_rollback": False} for n, sha in enumerate((a, c))])
        session.upsert("deployment_changes", [{"deployment_id": d, "repo": "shop", "sha": sha}
                                              for d, sha in (("d0", a), ("d1", b), ("d1", c))])
    monkeypatch.undo()
    assert migrations.added_columns() >= {("deployment_changes", "author_time"),
                                          ("deployment_changes", "committer_time")}
    # a migration that only adds columns keeps the fast open path available ...
    assert migrations.created_tables() is not None
    # ... and the fast check sees that this store lacks the columns, so the migration runs
    assert not connection._schema_is_current(resolve(db))
    # a reader does not migrate: on the old store the views look every change's times up
    con = open_reader(db)
    try:
        before_migration = _reports(con)
    finally:
        con.close()
    with open_writer(db, source="test"):
        pass
    assert connection._schema_is_current(resolve(db))
    # the migrated store (nothing written since the migration) reports what the old one did
    assert in_step(db, "SELECT sha, author_time, committer_time FROM deployment_changes ORDER BY sha",
                   reports=before_migration) == (3, [[
        (a, datetime(2024, 3, 1, 9, tzinfo=UTC), datetime(2024, 3, 1, 10, tzinfo=UTC)),
        (b, datetime(2024, 3, 2, 9, tzinfo=UTC), datetime(2024, 3, 2, 11, tzinfo=UTC)),
        (c, None, None)]])
    # rows the old schema inlined in the catalog, flushed into files after the columns were added
    # (architecture.md warned that DuckLake could not; DuckDB 1.5's can)
    run_cli(db, "maintain")
    assert in_step(db, "SELECT count(*), count(author_time) FROM deployment_changes") == (3, [[(3, 2)]])
