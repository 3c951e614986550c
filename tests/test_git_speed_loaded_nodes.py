"""A repository's first ``collect git`` numbers its commits for attribution while they load
(analytics/deployments/loaded_nodes.py), so attribution does not read them back after git's exit
(docs/performance.md, "Git ingest, session 9 (helper H6)"). These tests check that the numbering
is used when it may be (the loaded repository is the only one shipped), not used otherwise, and
that the stored rows are those of attribution's own read of the commits either way."""

from __future__ import annotations

import queue
from pathlib import Path

import pytest

from analytics.collectors import git as git_collector
from analytics.collectors import git_log
from analytics.collectors.git_source import locate, ref_tips
from analytics.deployments import loaded_nodes
from tests.gitrepo import GitRepo
from tests.store_query import git_store_dump, query

TAGS = r"^v[0-9.]+$"


def _repo(path: Path, tags: str = "v") -> GitRepo:
    """A history with merges and tags, long enough for several chunks at a small chunk size."""
    repo = GitRepo.init(path)
    main = ""
    for i in range(24):
        repo.commit(f"change {i} with a subject long enough to fill the log",
                    at=f"2024-05-{1 + i % 28:02d}T10:{i % 60:02d}:00+00:00")
        main = main or repo.git("rev-parse", "--abbrev-ref", "HEAD").strip()
        if i % 6 == 3:
            repo.branch(f"topic{i}")
            repo.commit(f"topic {i}", at=f"2024-05-{1 + i % 28:02d}T10:{i % 60:02d}:30+00:00")
            repo.checkout(main)
            repo.merge(f"topic{i}", at=f"2024-05-{1 + i % 28:02d}T10:{i % 60:02d}:40+00:00")
        if i % 5 == 2:
            repo.annotated_tag(f"{tags}1.{i}.0", at=f"2024-05-{1 + i % 28:02d}T11:{i % 60:02d}:00+00:00")
    return repo


def _one_chunk_a_load(self: git_log.LogReader, *, wait: bool = False) -> list[git_log.Chunk]:
    """LogReader.ready taking one chunk at a time: a load per chunk, whenever git ended."""
    if self.complete:
        return []
    try:
        item = self.queue.get() if wait else self.queue.get_nowait()
    except queue.Empty:
        return []
    if item is None:
        self.complete = True
        return []
    return [item]


def _collect(db: Path, repo: GitRepo, service: str = "svc") -> git_collector.GitSummary:
    location = locate(str(repo.path))
    options = git_collector.GitOptions(service=service, environment="production", deploy_tags=TAGS)
    return git_collector.collect(db, location, options, ref_tips(location.local_path))


def _spy(monkeypatch: pytest.MonkeyPatch, *, use: bool = True) -> list[tuple[bool, int]]:
    """What each take() answered and how many commits were numbered; ``use=False`` refuses
    the numbering, so attribution reads the commits as it does without it."""
    taken: list[tuple[bool, int]] = []
    real = loaded_nodes.LoadedNodes.take

    def take(self: loaded_nodes.LoadedNodes, con: object) -> bool:
        if not use:
            con.execute(f"DROP TABLE IF EXISTS {loaded_nodes.TABLE}")  # type: ignore[attr-defined]
            taken.append((False, self.count))
            return False
        answer = real(self, con)  # type: ignore[arg-type]
        taken.append((answer, self.count))
        return answer

    monkeypatch.setattr(loaded_nodes.LoadedNodes, "take", take)
    return taken


def test_a_first_collection_attributes_on_the_loaded_numbering(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = _repo(tmp_path / "repo")
    # a load per chunk, each numbered on from the ones before
    monkeypatch.setattr(git_log, "CHUNK_BYTES", 400)
    monkeypatch.setattr(git_log.LogReader, "ready", _one_chunk_a_load)
    taken = _spy(monkeypatch)
    summary = _collect(tmp_path / "loaded.ducklake", repo)
    assert len(summary.loads) > 1 and summary.new_commits == 32
    assert taken == [(True, 32)] and summary.changes == 31
    monkeypatch.undo()
    monkeypatch.setattr(git_log, "CHUNK_BYTES", 400)
    monkeypatch.setattr(git_log.LogReader, "ready", _one_chunk_a_load)
    refused = _spy(monkeypatch, use=False)
    assert _collect(tmp_path / "read.ducklake", repo).changes == 31 and refused == [(False, 32)]
    assert git_store_dump(tmp_path / "loaded.ducklake") == git_store_dump(tmp_path / "read.ducklake")


def test_the_numbering_is_not_used_for_an_incremental_load_or_when_another_repository_ships(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A second repository deployed to the same scope: its first load may not stand for the
    commits of both; a re-run of the first repository has commits stored before it."""
    first, second = _repo(tmp_path / "first"), _repo(tmp_path / "second", tags="v2")
    stores = {use: tmp_path / f"store-{use}.ducklake" for use in (True, False)}
    for use, db in stores.items():
        taken = _spy(monkeypatch, use=use)
        _collect(db, first)
        _collect(db, second)
        monkeypatch.undo()
        # the first repository alone ships; then both ship into the scope
        assert taken == ([(True, 32), (False, 32)] if use else [(False, 32), (False, 32)])
    first.commit("one more", at="2024-06-01T10:00:00+00:00")
    first.annotated_tag("v3.0.0", at="2024-06-01T11:00:00+00:00")
    for use, db in stores.items():
        taken = _spy(monkeypatch, use=use)
        assert _collect(db, first).new_commits == 1
        monkeypatch.undo()
        assert taken == []  # commits stored before: nothing numbered while loading
    assert git_store_dump(stores[True]) == git_store_dump(stores[False])
    assert query(stores[True], "SELECT count(DISTINCT repo) FROM deployment_changes") == [(2,)]
