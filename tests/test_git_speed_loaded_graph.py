"""A repository's first ``collect git`` matches each loaded chunk's parent edges while git still
walks (analytics/deployments/loaded_nodes.py), so attribution's first parents and merges
(attribution.sql steps 4 and 5) are not computed after git's exit (docs/performance.md, "Git
ingest, session 10 (helper H2)"). These tests compare that graph, edge by edge, with the one
steps 3-5 compute from the stored commits in the same transaction, on histories whose chunks
split merges, whose parents come before their children in git's output (a commit dated in the
future on its own branch), with an octopus merge, several roots, and a shallow clone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from analytics.collectors import git as git_collector
from analytics.collectors import git_log
from analytics.collectors.git_source import locate, ref_tips
from analytics.deployments import attribution, loaded_nodes
from tests.gitrepo import GitRepo
from tests.store_query import git_store_dump
from tests.test_git_ingest_equivalence import ALL_TAGS, _hostile_repo, _raw_commit
from tests.test_git_speed_loaded_nodes import _one_chunk_a_load

Edges = dict[str, tuple[str | None, list[str]]]


def _skewed_repo(path: Path) -> GitRepo:
    """The hostile history, fillers with merges, then a commit dated 2100 on a branch of its own
    and a 2024 child of it on main: git lists the parent first (it is the newest tip), so the
    child's edge is only matched after every chunk is in."""
    repo = _hostile_repo(path)
    for i in range(12):
        repo.commit(f"filler {i} with a subject long enough to fill a chunk",
                    at=f"2024-07-{1 + i:02d}T10:00:00+00:00")
        if i % 4 == 1:
            repo.branch(f"topic{i}")
            repo.commit(f"topic {i}", at=f"2024-07-{1 + i:02d}T10:30:00+00:00")
            repo.checkout("main")
            repo.merge(f"topic{i}", at=f"2024-07-{1 + i:02d}T10:40:00+00:00")
    future = _raw_commit(repo, [repo.rev_parse("main")], b"from the future\n",
                         committer=b"F <f@x> 4102444800 +0000")
    child = _raw_commit(repo, [future], b"child of the future\n", committer=b"C <c@x> 1720000000 +0000")
    repo.git("update-ref", "refs/heads/future", future)
    repo.git("update-ref", "refs/heads/main", child)
    repo.git("reset", "-q", "--hard", "main")
    repo.tag("v9.0.0", child)
    return repo


def _named(con: Any, nodes: str, first: list[int], extra: dict[int, list[int]]) -> Edges:
    """Each commit's parents by sha: (first parent or None, further parents in order)."""
    sha = dict(con.execute(f"SELECT i, sha FROM {nodes}").fetchall())
    return {sha[i]: (sha[p] if p >= 0 else None, [sha[q] for q in extra.get(i, [])])
            for i, p in enumerate(first)}


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Edges, Edges, int]]:
    """After each graph built from a first load: that graph, the one steps 3-5 build from the
    stored commits in the same transaction (into TEMP tables of their own), and how many edges
    were still open once every chunk was in. Each walk of the built graph is checked against
    the same walk of its edges in :class:`attribution._Graph`'s list form."""
    seen: list[tuple[Edges, Edges, int]] = []
    real_graph = attribution._graph

    def graph(con: Any, loaded: loaded_nodes.LoadedNodes | None) -> Any:
        open_edges = loaded.open if loaded is not None else -1
        built = real_graph(con, loaded)
        if not isinstance(built, attribution._LoadedGraph):
            return built
        first, extra = built.edges()
        named = _named(con, "_attr_nodes", first, extra)
        con.execute(attribution._NODES.replace("TEMP TABLE _attr_nodes", "TEMP TABLE _ref_nodes"))
        ref_first = [p for (p,) in con.execute(
            attribution._FIRST_PARENTS.replace("_attr_nodes", "_ref_nodes")).fetchall()]
        children, parents = con.execute(attribution._MERGES.replace("_attr_nodes", "_ref_nodes")).fetchone()
        ref_extra: dict[int, list[int]] = {}
        for c, p in zip(children or [], parents or [], strict=True):
            ref_extra.setdefault(c, []).append(p)
        seen.append((named, _named(con, "_ref_nodes", ref_first, ref_extra), open_edges))
        con.execute("DROP TABLE _ref_nodes")
        return _CheckedWalks(built, first, extra)

    monkeypatch.setattr(attribution, "_graph", graph)
    return seen


class _CheckedWalks:
    """A built graph whose every walk is compared with the list form's walk: the spans it gives,
    expanded, are the commits the list form visits, in the same order."""

    spans = True

    def __init__(self, built: Any, first: list[int], extra: dict[int, list[int]]) -> None:
        self.built, self.size = built, built.size
        self.lists = object.__new__(attribution._Graph)
        self.lists.first, self.lists.extra = first, extra
        self.spans_seen = 0

    def walk(self, start: int, visited: bytearray, out: list[int]) -> None:
        shadow, theirs = bytearray(visited), list[int]()
        self.lists.walk(start, shadow, theirs)
        before = len(out)
        self.built.walk(start, visited, out)
        mine = out[before:]
        expanded = [i for lo, hi in zip(mine[::2], mine[1::2], strict=True) for i in range(lo, hi)]
        assert all(hi > lo for lo, hi in zip(mine[::2], mine[1::2], strict=True))
        assert expanded == theirs and visited == shadow
        self.spans_seen += len(mine) // 2


def _collect(db: Path, repo: GitRepo) -> git_collector.GitSummary:
    location = locate(str(repo.path))
    options = git_collector.GitOptions(service="svc", environment="production", deploy_tags=ALL_TAGS)
    return git_collector.collect(db, location, options, ref_tips(location.local_path))


def _small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(git_log, "CHUNK_BYTES", 300)
    monkeypatch.setattr(git_log.LogReader, "ready", _one_chunk_a_load)


@pytest.mark.parametrize("small", [True, False], ids=["a chunk per load", "one chunk"])
def test_the_graph_matched_chunk_by_chunk_equals_the_one_read_from_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small: bool,
) -> None:
    """Small chunks: nearly every edge crosses chunks (matched by sha, carried, matched at the
    end); one chunk: most first parents are the next number, so the walks give long spans and
    spans of a single commit (a merged branch's commit, walked after the main line)."""
    repo = _skewed_repo(tmp_path / "repo")
    if small:
        _small_chunks(monkeypatch)
    seen = _spy(monkeypatch)
    summary = _collect(tmp_path / "db.ducklake", repo)
    assert (len(summary.loads) > 5) == small
    [(built, reference, open_edges)] = seen
    assert len(built) == summary.new_commits == len(reference)
    assert built == reference
    # the future commit's child was matched at the end; the octopus keeps its parents' order
    assert (open_edges > 0) == small
    child = repo.rev_parse("v9.0.0")
    assert built[child][0] == repo.rev_parse("future")
    assert [len(further) for _, further in built.values() if further].count(2) == 1
    # and the stored rows equal those of a collection that reads the commits back
    monkeypatch.undo()
    if small:
        _small_chunks(monkeypatch)
    monkeypatch.setattr(loaded_nodes.LoadedNodes, "take", lambda self, con: False)
    _collect(tmp_path / "read.ducklake", repo)
    assert git_store_dump(tmp_path / "db.ducklake") == git_store_dump(tmp_path / "read.ducklake")


def test_a_shallow_clone_matches_as_the_store_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A shallow clone: git lists its boundary commits without their parents (roots here)."""
    source = _skewed_repo(tmp_path / "source")
    repo = source.shallow_clone(tmp_path / "shallow", depth=6)
    _small_chunks(monkeypatch)
    seen = _spy(monkeypatch)
    _collect(tmp_path / "db.ducklake", repo)
    [(built, reference, open_edges)] = seen
    assert built == reference
    assert len(built) == 7 and sum(first is None for first, _ in built.values()) > 1
