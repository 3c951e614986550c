"""tests/git_stream.py writes, in one ``git fast-import`` stream, the same repository GitRepo writes with
a git process per step: every ref (branches, lightweight and annotated tags) at the same sha, and
the same checked-out branch and clean working tree. The generated repository of
test_crosscheck_revlist relies on it; this history has one of each step it takes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.git_stream import HistoryStream
from tests.gitrepo import GitRepo


def _steps(repo: Any, last_non_merge: Callable[[], str | int],
           delete_branch: Callable[[str], object]) -> Any:
    """One history through either API (GitRepo's revisions, HistoryStream's marks); returns the
    commit of the deleted branch."""
    repo.commit("initial", at="2024-01-01T09:00:00+00:00")
    repo.annotated_tag("v0.1.0", at="2024-01-01T11:00:00+00:00")
    repo.branch("feature/a")
    repo.commit("a step 0", at="2024-01-02T09:00:00+00:00", tz="+0530")
    repo.commit("a step 1", at="2024-01-02T12:00:00+00:00", tz="-0500",
                committed_at="2024-01-03T18:00:00+00:00")          # rebased: committed later
    repo.checkout("main")
    repo.commit("fix 1", at="2024-01-03T08:00:00+00:00", tz="+0200")
    repo.merge("feature/a", at="2024-01-04T10:00:00+00:00")
    repo.tag("v1.0.0")
    repo.annotated_tag("v1.0.1", at="2024-01-04T13:00:00+00:00")   # a second tag on one commit
    picked = last_non_merge()
    repo.branch("release/v0.1.0", start="v0.1.0")
    repo.cherry_pick(picked, at="2024-01-05T09:00:00+00:00")
    repo.annotated_tag("v0.1.9", at="2024-01-05T10:00:00+00:00")
    repo.checkout("main")
    repo.commit("late author clock", at="2024-01-07T06:00:00+00:00", committed_at="2024-01-07T00:00:00+00:00")
    undone = repo.commit("to revert", at="2024-01-08T09:00:00+00:00", tz="+0200")
    repo.revert(undone, at="2024-01-08T09:05:00+00:00")
    repo.branch("gone")
    gone = repo.commit("force-pushed away", at="2024-01-09T09:00:00+00:00")
    repo.checkout("main")
    delete_branch("gone")
    return gone


def _state(repo: GitRepo) -> tuple[str, str, str, str]:
    return (repo.git("for-each-ref", "--format=%(objectname) %(refname) %(*objectname)"),
            repo.git("symbolic-ref", "HEAD"), repo.git("rev-parse", "HEAD"),
            repo.git("status", "--porcelain"))


def test_the_stream_writes_the_commits_and_tags_gitrepo_writes(tmp_path: Path) -> None:
    by_process = GitRepo.init(tmp_path / "processes")
    _steps(by_process, lambda: by_process.git("log", "-1", "--no-merges", "--format=%H", "HEAD"),
           lambda name: by_process.git("branch", "-D", name))
    with HistoryStream(tmp_path / "stream") as stream:
        gone = stream.sha(_steps(stream, stream.last_non_merge, stream.delete_branch))
    expected = _state(by_process)
    assert len(expected[0].splitlines()) == 7 and expected[3] == ""
    assert _state(stream.repo) == expected
    # the deleted branch's commit is the one the reflog names, and is still in the repository
    reflog = by_process.git("reflog", "--format=%H %s")
    assert f"{gone} force-pushed away" in reflog.splitlines()
    assert stream.repo.git("cat-file", "-t", gone) == "commit"
    # the cherry-pick took the rebased step (newest by committer date), not the later-authored fix
    picked = by_process.git("log", "-1", "--format=%B", "release/v0.1.0")
    assert picked.startswith("a step 1\n\n(cherry picked from commit ")
