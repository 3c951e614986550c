"""A first ``collect git`` into a new store skips its reads of tables that cannot hold a row yet
(docs/performance.md, "Git ingest, session 9 (helper H6)"): the watermark and commit count, the
tags, the git deployments, and attribution's stored changes and warnings. ``store.connection.store_was_empty``
decides it from the snapshot list; these tests check that it says "empty" only for a store
nothing was written to, that the skipped reads are really skipped, and that the stored rows are
the same as with the reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from analytics.collectors import git as git_collector
from analytics.collectors import git_deploy
from analytics.collectors.git_source import locate, ref_tips
from analytics.deployments import attribution
from analytics.store import connection, literals, upsert
from analytics.store.connection import write_unit
from tests.gitrepo import GitRepo
from tests.store_query import git_store_dump, query

TAGS = r"^v[0-9.]+$"
# the few-row loads a first collection makes as INSERTs (session 10): nothing to match yet
MERGED = tuple(f'MERGE INTO "{table}"' for table in
               ("repositories", "services", "environments", "collector_state"))
DIMENSIONS = ("SELECT * FROM services", "SELECT * FROM environments",
              "SELECT * EXCLUDE (last_collected_at) FROM repositories")
# the reads a first collection into a new store leaves out: the collector's three, and
# attribution's of the stored changes, the deployments' revisions (session 10) and warnings
SKIPPED = ("FROM collector_state WHERE source = $1 AND key = $2",
           "FROM tags WHERE repo = $1",
           "FROM deployments\n           WHERE repository = $2",
           "CREATE OR REPLACE TEMP TABLE _attr_old AS",
           "FROM deployment_revisions",
           "FROM data_warnings")


def _repo(path: Path) -> GitRepo:
    repo = GitRepo.init(path)
    for i in range(9):
        repo.commit(f"change {i}", at=f"2024-05-{1 + i:02d}T10:00:00+00:00")
        if i % 3 == 1:
            repo.annotated_tag(f"v1.{i}.0", at=f"2024-05-{1 + i:02d}T11:00:00+00:00")
    main = repo.git("rev-parse", "--abbrev-ref", "HEAD").strip()
    repo.branch("topic")
    repo.commit("on a branch", at="2024-05-20T10:00:00+00:00")
    repo.checkout(main)
    repo.merge("topic", at="2024-05-21T10:00:00+00:00")
    repo.annotated_tag("v2.0.0", at="2024-05-21T11:00:00+00:00")
    return repo


def _recording(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement the collector's modules run through ``literals.execute``."""
    seen: list[str] = []
    original = literals.execute

    def execute(con: Any, sql: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(sql)
        return original(con, sql, *args, **kwargs)

    for module in (literals, git_collector, git_deploy, attribution, upsert):
        monkeypatch.setattr(module, "execute", execute)
    return seen


def _collect(db: Path, repo: GitRepo) -> git_collector.GitSummary:
    location = locate(str(repo.path))
    options = git_collector.GitOptions(service="svc", environment="production", deploy_tags=TAGS)
    return git_collector.collect(db, location, options, ref_tips(location.local_path))


def test_only_a_store_nothing_was_written_to_is_empty(tmp_path: Path) -> None:
    """True in the first unit of a new store; False once any unit committed (here one that wrote
    nothing but its run record), and False on a plain DuckDB database (no snapshots to read)."""
    db = tmp_path / "store.ducklake"
    answers: list[bool] = []
    for _ in range(2):
        write_unit(db, lambda session: answers.append(connection.store_was_empty(session.con)),
                   source="test", target="test")
    assert answers == [True, False]
    assert connection.store_was_empty(duckdb.connect()) is False


def test_a_first_collection_into_a_new_store_skips_the_reads_and_stores_the_same_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = _repo(tmp_path / "repo")
    seen = _recording(monkeypatch)
    summary = _collect(tmp_path / "skipped.ducklake", repo)
    assert summary.new_commits == 11 and summary.deployments == 4 and summary.changes == 11
    assert seen, "the recording saw no statement"
    assert not [sql for sql in seen if any(read in sql for read in SKIPPED + MERGED)]

    # the same collection with every read made: the same rows
    seen.clear()
    monkeypatch.setattr(connection, "store_was_empty", lambda con: False)
    assert _collect(tmp_path / "read.ducklake", repo).changes == 11
    assert all(any(read in sql for sql in seen) for read in SKIPPED + MERGED)
    assert git_store_dump(tmp_path / "skipped.ducklake") == git_store_dump(tmp_path / "read.ducklake")
    for sql in DIMENSIONS:
        assert query(tmp_path / "skipped.ducklake", sql) == query(tmp_path / "read.ducklake", sql) != []


def test_a_store_with_rows_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The second collection (a new commit and tag) reads what the first stored: an unchanged tag
    and deployment are not written again, and the rows equal a fresh collection's."""
    repo = _repo(tmp_path / "repo")
    db = tmp_path / "store.ducklake"
    _collect(db, repo)
    repo.commit("one more", at="2024-06-01T10:00:00+00:00")
    repo.annotated_tag("v3.0.0", at="2024-06-01T11:00:00+00:00")
    seen = _recording(monkeypatch)
    summary = _collect(db, repo)
    assert summary.new_commits == 1 and not summary.full
    assert all(any(read in sql for sql in seen) for read in SKIPPED)
    # only the new tag and deployment are inserted (the read found the others)
    inserts = [sql for sql in seen if "INSERT INTO tags" in sql or "INSERT INTO deployments" in sql]
    assert len(inserts) == 2
    monkeypatch.undo()
    _collect(tmp_path / "fresh.ducklake", repo)
    assert git_store_dump(db) == git_store_dump(tmp_path / "fresh.ducklake")
