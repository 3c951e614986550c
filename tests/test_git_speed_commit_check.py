"""A first ``collect git`` into a new store skips the doubled-key check after its commit when no
other writer committed meanwhile: its dimension tables then hold only its own rows, one
repository, service and environment (docs/performance.md, "Git ingest, session 10 (helper
H2)"). A writer that committed in between, or a store that had rows, still gets the check, and
the unit's run record is written as before."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from analytics.collectors import git as git_collector
from analytics.collectors.git_source import locate, ref_tips
from analytics.store import connection
from analytics.store.connection import _newest_snapshot, _only_commit_since, hold_store, open_writer
from analytics.store.location import resolve
from tests.gitrepo import GitRepo
from tests.store_query import query

TAGS = r"^v[0-9.]+$"


def _repo(path: Path) -> GitRepo:
    repo = GitRepo.init(path)
    for i in range(6):
        repo.commit(f"change {i}", at=f"2024-05-{1 + i:02d}T10:00:00+00:00")
        if i % 2:
            repo.annotated_tag(f"v1.{i}.0", at=f"2024-05-{1 + i:02d}T11:00:00+00:00")
    return repo


def _collect(db: Path, repo: GitRepo) -> git_collector.GitSummary:
    location = locate(str(repo.path))
    options = git_collector.GitOptions(service="svc", environment="production", deploy_tags=TAGS)
    return git_collector.collect(db, location, options, ref_tips(location.local_path))


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The tables each doubled-key check was asked to read."""
    checks: list[list[str]] = []
    real = connection._drop_concurrent_duplicates

    def check(con: object, tables: Sequence[str] = connection.SHARED_DIMENSIONS) -> None:
        checks.append(list(tables))
        real(con, tables)  # type: ignore[arg-type]

    monkeypatch.setattr(connection, "_drop_concurrent_duplicates", check)
    return checks


def test_a_first_collection_skips_the_check_and_a_second_one_makes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = _repo(tmp_path / "repo")
    db = tmp_path / "store.ducklake"
    checks = _spy(monkeypatch)
    assert _collect(db, repo).changes == 6
    assert checks == []
    # the catalog is left alone, as after a unit that made the check
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo", "store.ducklake", "store.ducklake.files"]
    runs = query(db, "SELECT source, status, rows_written, message FROM collection_runs")
    assert runs == [("git:repo", "ok", 6 + 3 + 3 + 6,
                     "git repo: 6 new commits (full; 6 in total), 3 tags, 3 git deployments, "
                     "6 attributed changes")]
    repo.commit("one more", at="2024-06-01T10:00:00+00:00")
    repo.annotated_tag("v2.0.0", at="2024-06-01T11:00:00+00:00")
    assert _collect(db, repo).new_commits == 1
    assert checks == [["repositories"]]  # the store had rows: the check as before
    assert query(db, "SELECT count(*), count(DISTINCT id) FROM collection_runs") == [(2, 2)]


def test_a_writer_committing_meanwhile_brings_the_check_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str],
) -> None:
    """Another writer commits (an incident) while the first collection's unit is open: the unit
    conflicts and runs again, on a store that is no longer empty, so it makes the check."""
    repo = _repo(tmp_path / "repo")
    db = tmp_path / "store.ducklake"
    release = tmp_path / "release"
    monkeypatch.setenv("GITOPS_DORA_PAUSE_BEFORE_COMMIT", f"until:{release}")
    paused = threading.Event()
    real_pause = connection._pause_before_commit

    def pause(value: str) -> None:
        paused.set()
        real_pause(value)

    monkeypatch.setattr(connection, "_pause_before_commit", pause)
    checks = _spy(monkeypatch)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            _collect(db, repo)
        except BaseException as exc:  # noqa: BLE001 - re-raised on the test's thread
            failure.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    try:
        assert paused.wait(120)
        with hold_store(db) as con:
            con.execute("BEGIN TRANSACTION")
            con.execute("INSERT INTO incidents (id, created_at, source) VALUES ('i1', now(), 'import')")
            con.execute("COMMIT")
    finally:
        release.touch()
        worker.join(120)
    assert not failure
    assert "running it again (attempt 2)" in capfd.readouterr().err
    assert checks == [["services", "environments", "repositories"]]
    assert query(db, "SELECT count(*) FROM commits") == [(6,)]


def _add_incident(con: Any, name: str) -> None:
    con.execute("BEGIN TRANSACTION")
    con.execute(f"INSERT INTO incidents (id, created_at, source) VALUES ('{name}', now(), 'import')")
    con.execute("COMMIT")


def test_only_a_commit_right_after_the_units_start_counts_as_the_only_one(tmp_path: Path) -> None:
    """The guard itself: a writer whose snapshot came between the unit's start and its commit
    (committed before the unit's transaction began, so no conflict) makes the answer no."""
    db = tmp_path / "store.ducklake"
    with open_writer(db, source="setup") as session:
        session.set_state("x", "k", "v")
    loc = resolve(db)
    start = _newest_snapshot(loc)
    assert isinstance(start, int)
    with hold_store(db) as con:
        assert not _only_commit_since(con, start)  # nothing committed on this connection yet
        _add_incident(con, "a")
        assert _only_commit_since(con, start)
        with hold_store(db) as other:
            _add_incident(other, "b")
        _add_incident(con, "c")
        assert not _only_commit_since(con, start + 1)  # "b" came in between
        assert _only_commit_since(con, start + 2)
    assert not _only_commit_since(con, None)  # PostgreSQL: no snapshot read, no skip
