"""``collect git``'s unit loads the commits git has written so far before it writes the tags and
deployments (no waiting), and the rest after them; once git has exited, a load of several chunks
runs on the connection's own DuckDB threads (the rest of the unit runs on one, so as not to
compete with git's walk): the CSV reader and the Parquet writer then split the chunks while the
core git used is idle. Same rows whichever way the load ran; and the faster way must not quietly
stop being taken."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from analytics.collectors import git as git_collector
from analytics.collectors import git_log
from analytics.collectors.git_source import locate, ref_tips
from analytics.store.connection import open_writer
from tests.gitrepo import GitRepo
from tests.store_query import git_store_dump

TAGS = r"^v[0-9.]+$"


def _repo(path: Path) -> GitRepo:
    repo = GitRepo.init(path)
    for i in range(30):
        repo.commit(f"change {i} \u00e9", at=f"2024-05-{1 + i % 28:02d}T10:{i:02d}:00+00:00")
        if i % 7 == 3:
            repo.annotated_tag(f"v1.{i}.0", at=f"2024-05-{1 + i % 28:02d}T11:{i:02d}:00+00:00")
    repo.branch("feature")
    repo.commit("feature work", at="2024-06-01T10:00:00+00:00")
    repo.checkout("main")
    repo.merge("feature", at="2024-06-02T10:00:00+00:00")
    repo.revert(repo.rev_parse("HEAD~1"), at="2024-06-03T10:00:00+00:00")
    repo.tag("v2.0.0")
    return repo


_dump = git_store_dump


def _collect(db: Path, repo: GitRepo, *, git_done: bool) -> git_collector.GitSummary:
    """A first collection, handing ``collect`` a log that git has (or may not have) finished."""
    location = locate(str(repo.path))
    tips = ref_tips(location.local_path)
    log = git_log.LogReader(location.local_path, [])
    if git_done:
        log.thread.join()  # git exited and every chunk is cut: what a quiet machine sees
    options = git_collector.GitOptions(service="svc", environment="production", deploy_tags=TAGS)
    try:
        return git_collector.collect(db, location, options, tips, log)
    finally:
        log.abort()


def test_load_after_git_exited_uses_the_connections_threads_with_the_same_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = _repo(tmp_path / "svc")
    monkeypatch.setattr(git_log, "CHUNK_BYTES", 400)  # many chunks from a small history
    monkeypatch.setenv("GITOPS_DORA_DUCKDB_THREADS", "2")
    fast = _collect(tmp_path / "fast.ducklake", repo, git_done=True)
    assert len(fast.loads) == 1 and fast.loads[0][0] > 1, fast.loads
    assert fast.loads[0][1] == 2  # every chunk in one statement on two threads
    assert fast.loaded_early == fast.loads[0][0]  # before the tags: nothing left to wait for

    monkeypatch.setenv("GITOPS_DORA_DUCKDB_THREADS", "1")  # the user's limit is kept
    single = _collect(tmp_path / "single.ducklake", repo, git_done=True)
    assert single.loads == [(fast.loads[0][0], 1)]

    assert fast.new_commits == single.new_commits == 33
    expected = _dump(tmp_path / "single.ducklake")
    assert _dump(tmp_path / "fast.ducklake") == expected
    assert len(expected["commits"]) == 33 and len(expected["deployment_changes"]) == 33


def test_chunks_ready_before_git_ends_load_at_once_and_the_rest_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``load_ready`` takes what git has written without waiting for the rest (the unit writes the
    tags and deployments meanwhile); ``finish`` loads the rest: the same commits as one load."""
    repo = _repo(tmp_path / "svc")
    monkeypatch.setattr(git_log, "CHUNK_BYTES", 400)
    monkeypatch.setenv("GITOPS_DORA_DUCKDB_THREADS", "2")
    whole = _collect(tmp_path / "whole.ducklake", repo, git_done=True)

    location = locate(str(repo.path))
    reader = git_log.LogReader(location.local_path, [])
    while reader.queue.qsize() < 2:  # one chunk cut and (at least) a second one coming
        time.sleep(0.001)
    db = tmp_path / "split.ducklake"
    loads: list[tuple[int, int]] = []
    with open_writer(db, source="test") as session:
        load = git_log.CommitLoad(session.con, location.repo_id, location.local_path, [], before=0,
                                  reader=reader, threads_after_git=2, loads=loads)
        early = load.load_ready()
        assert early >= 1 and loads[0][0] == early
        assert load.finish() == 33
    assert sum(n for n, _ in loads) == whole.loads[0][0]
    assert _dump(db)["commits"] == _dump(tmp_path / "whole.ducklake")["commits"]
    # each chunk's file is removed once loaded, and the reader's folder with the last
    assert not reader.tmp.exists()


def test_attribution_after_the_load_runs_on_one_thread_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Attribution on two threads used more CPU and was no faster (docs/performance.md, session 7)."""
    repo = _repo(tmp_path / "svc")
    monkeypatch.setattr(git_log, "CHUNK_BYTES", 400)
    monkeypatch.setenv("GITOPS_DORA_DUCKDB_THREADS", "2")
    seen: list[int] = []
    from analytics.deployments import attribution

    real = attribution.PreparedAttribution.finish

    def spy(self: attribution.PreparedAttribution) -> int:
        # the half after the commits' load (prepare_attribution runs before it ends)
        seen.append(int(self._con.execute("SELECT current_setting('threads')").fetchall()[0][0]))
        return real(self)

    monkeypatch.setattr(attribution.PreparedAttribution, "finish", spy)
    summary = _collect(tmp_path / "store.ducklake", repo, git_done=True)
    assert summary.loads[0][1] == 2
    assert seen == [1]


def test_collect_git_opens_its_connections_on_one_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The writer's open (a new store's schema), the post-commit steps and the unchanged run's
    reads are DuckLake catalog queries, which a second DuckDB worker made cost more CPU; only the
    commits' load after git takes one thread per core (DuckDB's default) when nothing is set."""
    from analytics.store import connection

    repo = _repo(tmp_path / "svc")
    monkeypatch.setattr(git_log, "CHUNK_BYTES", 400)
    monkeypatch.delenv("GITOPS_DORA_DUCKDB_THREADS", raising=False)
    opened: list[int] = []
    real = connection._track_written_files

    def spy(con: Any, loc: Any) -> bool:  # runs right after the writer's open and migration
        opened.append(int(con.execute("SELECT current_setting('threads')").fetchall()[0][0]))
        return bool(real(con, loc))

    monkeypatch.setattr(connection, "_track_written_files", spy)
    db = tmp_path / "store.ducklake"
    summary = _collect(db, repo, git_done=True)
    assert opened == [1]
    assert summary.loads == [(summary.loads[0][0], max(1, os.cpu_count() or 1))]
    reader = git_collector.state_reader(db)
    try:
        assert reader.execute("SELECT current_setting('threads')").fetchall() == [(1,)]
    finally:
        reader.close()
    assert _dump(db)["commits"] and len(_dump(db)["commits"]) == 33
