"""The reconciler import walks deployment ranges in memory (``analytics/deployments/images.py``
``CommitGraph.range`` / ``path_range``) instead of one ``git rev-list`` per range: on a generated
repository with branches, merges, a second root and path changes, every in-memory answer must be
exactly git's, and the cases it cannot answer (merges under a path limit, glob paths, commits
outside the graph, a history over the size cap) must go back to git."""

from __future__ import annotations

import importlib
import random
import subprocess
from pathlib import Path

import pytest

from analytics.demo.fast_import import FastImport, Person, git_env
from analytics.deployments import images
from analytics.deployments.images import CommitGraph

DEV = Person("Dev", "dev@example.com", "+0000")
PATHS = ("apps/a/overlays/prod/k.yaml", "apps/a/overlays/staging/k.yaml", "apps/b/base/d.yaml", "README.md")


def _git(repo: Path, *args: str) -> list[str]:
    out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True,
                         env=git_env()).stdout
    return out.split()


def _build(path: Path, seed: int) -> tuple[list[str], list[str]]:
    """A history of ~120 commits: main with feature branches merged back, some linear stretches,
    and an unrelated second root merged in. Returns (every commit, the linear main commits)."""
    rng = random.Random(seed)
    at = 1_700_000_000
    marks: list[int] = []
    linear: list[int] = []
    with FastImport(path) as fi:
        tip = fi.commit("refs/heads/main", "root\n", author=DEV, authored_at=at,
                        files={p: "0\n" for p in PATHS})
        marks.append(tip)
        other = fi.commit("refs/heads/other", "second root\n", author=DEV, authored_at=at + 1,
                          files={"apps/a/overlays/prod/extra.yaml": "x\n"})
        marks.append(other)
        for n in range(40):
            at += 3600
            if rng.random() < 0.5:  # a linear commit on main touching one path
                tip = fi.commit("refs/heads/main", f"c{n}\n", author=DEV, authored_at=at, parent=tip,
                                files={rng.choice(PATHS): f"{n}\n"})
                marks.append(tip)
                linear.append(tip)
                continue
            branch, head = f"refs/heads/f{n}", tip
            for k in range(rng.randint(1, 3)):
                at += 60
                head = fi.commit(branch, f"f{n}.{k}\n", author=DEV, authored_at=at, parent=head,
                                 files={rng.choice(PATHS): f"{n}.{k}\n"})
                marks.append(head)
            if rng.random() < 0.5:  # main moves on meanwhile
                at += 60
                tip = fi.commit("refs/heads/main", f"m{n}\n", author=DEV, authored_at=at, parent=tip,
                                files={rng.choice(PATHS): f"m{n}\n"})
                marks.append(tip)
            at += 60
            files = {rng.choice(PATHS): f"merge{n}\n"} if rng.random() < 0.5 else {}
            tip = fi.commit("refs/heads/main", f"merge f{n}\n", author=DEV, authored_at=at, parent=tip,
                            merge=head, files=files)
            marks.append(tip)
        at += 60
        tip = fi.commit("refs/heads/main", "merge the second root\n", author=DEV, authored_at=at,
                        parent=tip, merge=other)
        marks.append(tip)
        for n in range(5):  # a linear stretch at the end
            at += 60
            tip = fi.commit("refs/heads/main", f"tail{n}\n", author=DEV, authored_at=at, parent=tip,
                            files={rng.choice(PATHS): f"tail{n}\n"})
            marks.append(tip)
            linear.append(tip)
        shas = {m: fi.sha(m) for m in marks}
    return [shas[m] for m in marks], [shas[m] for m in linear]


@pytest.mark.parametrize("seed", [1, 2])
def test_ranges_walked_in_memory_equal_git_rev_list(tmp_path: Path, seed: int) -> None:
    repo = tmp_path / "repo"
    commits, _ = _build(repo, seed)
    graph = CommitGraph(repo)
    rng = random.Random(seed)
    pairs: list[tuple[str, str | None]] = [(rng.choice(commits), rng.choice(commits)) for _ in range(150)]
    pairs += [(c, None) for c in commits[::7]]
    for tip, exclude in pairs:
        walked = graph.range(tip, exclude)
        assert walked is not None
        expected = _git(repo, "rev-list", tip, *([f"^{exclude}"] if exclude else []))
        assert sorted(walked) == sorted(expected), (tip, exclude)
        assert len(walked) == len(set(walked))


@pytest.mark.parametrize("seed", [1, 2])
def test_path_limited_ranges_equal_git_or_go_back_to_git(tmp_path: Path, seed: int) -> None:
    repo = tmp_path / "repo"
    commits, linear = _build(repo, seed)
    graph = CommitGraph(repo)
    rng = random.Random(seed)
    answered = fell_back = 0
    pairs = [(rng.choice(commits), rng.choice(commits)) for _ in range(150)]
    pairs += [(linear[i], linear[i - 1]) for i in range(1, len(linear))]
    for tip, exclude in pairs:
        for path in ("apps/a/overlays/prod", "apps/a/overlays/prod/", "apps/b", "README.md", "apps"):
            walked = graph.path_range(tip, exclude, path)
            if walked is None:
                fell_back += 1
                continue
            answered += 1
            expected = _git(repo, "rev-list", tip, f"^{exclude}", "--", path)
            assert sorted(walked) == sorted(expected), (tip, exclude, path)
    assert answered > 20 and fell_back > 20  # both paths were exercised
    # a range with a merge in it is git's: history simplification decides what it lists
    merge = next(c for c in commits if len(graph.parents[c]) > 1)
    assert graph.path_range(merge, None, "apps") is None
    assert graph.path_range(linear[-1], linear[-3], "apps/*/overlays") is None  # glob: git's pathspec


def test_commits_outside_the_graph_and_large_histories_go_to_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    commits, linear = _build(repo, 3)
    assert CommitGraph(repo).range("0" * 40, None) is None
    assert CommitGraph(repo).range(linear[-1], "0" * 40) is None
    monkeypatch.setattr(images, "_GRAPH_MAX", 10)
    small = CommitGraph(repo)
    assert small.range(linear[-1], linear[-2]) is None
    assert small.path_range(linear[-1], linear[-2], "apps") is None
    # ancestry (a config repository's question) reads the whole graph, which ranges then walk
    assert small.ancestors(commits[0]) == frozenset(_git(repo, "rev-list", commits[0]))
    walked = small.range(linear[-1], linear[-3])
    assert walked is not None
    assert sorted(walked) == sorted(_git(repo, "rev-list", linear[-1], f"^{linear[-3]}"))


def test_demo_incident_step_ancestry_equals_git_merge_base(tmp_path: Path) -> None:
    """Step 30 asks which release first shipped a commit from one graph read, where it ran
    ``git merge-base --is-ancestor`` per question."""
    steps = importlib.import_module("analytics.demo.steps.30_incidents")
    repo = tmp_path / "repo"
    commits, _ = _build(repo, 4)
    graph = CommitGraph(repo)
    rng = random.Random(4)
    answers = set()
    for ancestor, descendant in [(rng.choice(commits), rng.choice(commits)) for _ in range(120)]:
        git = subprocess.run(["git", "-C", str(repo), "merge-base", "--is-ancestor", ancestor, descendant],
                             capture_output=True, env=git_env()).returncode == 0
        release = {"sha": descendant}
        shipped = steps._first_release_with(graph, [release], ancestor)
        assert (shipped is release) == git, (ancestor, descendant)
        answers.add(git)
    assert answers == {True, False}
    assert steps._first_release_with(graph, [{"sha": commits[-1]}], commits[-1]) is not None
