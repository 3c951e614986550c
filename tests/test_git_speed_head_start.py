"""``collect git`` into a new store starts its ``git log`` before the CLI loads Typer, pydantic and
duckdb (analytics/cli/git_head_start.py), and the rows are the same as without that head start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from analytics.cli import git_head_start
from tests import cli_inprocess
from tests.gitrepo import GitRepo
from tests.store_query import git_store_dump

ROOT = Path(__file__).resolve().parent.parent
TAGS = r"^v[0-9.]+$"

# Records, in a fresh interpreter, what was imported when each git command started.
_PROBE = """
import subprocess, sys
seen = []
original = subprocess.Popen.__init__
def init(self, args, *a, **k):
    if isinstance(args, list) and args[:1] == ["git"]:
        command = "log" if "log" in args else args[3]
        seen.append((command, sorted(m for m in ("typer", "pydantic", "duckdb") if m in sys.modules)))
    original(self, args, *a, **k)
subprocess.Popen.__init__ = init
from analytics.cli.main import run
try:
    run(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print("SEEN=" + repr(seen))
sys.exit(code)
"""


def _repo(path: Path) -> GitRepo:
    repo = GitRepo.init(path)
    for i in range(6):
        repo.commit(f"change {i}", at=f"2024-05-0{1 + i}T10:00:00+00:00")
        if i % 2:
            repo.annotated_tag(f"v1.{i}.0", at=f"2024-05-0{1 + i}T11:00:00+00:00")
    repo.branch("feature")
    repo.commit("feature work", at="2024-05-08T10:00:00+00:00")
    repo.checkout("main")
    repo.merge("feature", at="2024-05-09T10:00:00+00:00")
    repo.revert(repo.rev_parse("HEAD~1"), at="2024-05-10T10:00:00+00:00")
    repo.tag("v2.0.0")
    return repo


_dump = git_store_dump


def test_git_log_starts_before_typer_pydantic_and_duckdb_load(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "svc")
    db = tmp_path / "store.ducklake"
    proc = subprocess.run([sys.executable, "-c", _PROBE, "--db", str(db), "collect", "git", str(repo.path),
                           "--deploy-tags", TAGS], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    seen = eval(proc.stdout.split("SEEN=", 1)[1])  # noqa: S307 - the probe's own repr of a list
    logs = [loaded for command, loaded in seen if command == "log"]
    assert logs == [[]], seen  # one git log, started with none of them imported
    assert "9 new commits (full; 9 in total)" in proc.stderr


def test_rows_equal_with_and_without_the_head_start(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    repo = _repo(tmp_path / "svc")
    taken: list[object] = []
    original_take = git_head_start.take

    def take(path_or_url: str, repo_id: str | None) -> git_head_start.HeadStart | None:
        found = original_take(path_or_url, repo_id)
        taken.append(found)
        return found

    monkeypatch.setattr(git_head_start, "take", take)
    args = ["collect", "git", str(repo.path), "--deploy-tags", TAGS, "--repo-id", "svc"]
    with_head = tmp_path / "with.ducklake"
    proc = cli_inprocess.run(["--db", str(with_head), *args])
    assert proc.returncode == 0, proc.stderr
    assert len(taken) == 1 and taken[0] is not None  # the log the head start ran was the one loaded

    monkeypatch.setattr(git_head_start, "start", lambda args: None)
    without = tmp_path / "without.ducklake"
    proc = cli_inprocess.run(["--db", str(without), *args])
    assert proc.returncode == 0, proc.stderr
    assert taken[1] is None
    assert _dump(with_head) == _dump(without)
    assert len(_dump(with_head)["commits"]) == 9


def test_no_head_start_unless_a_plain_collect_git_into_a_new_store(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "svc")
    new, old = tmp_path / "new.ducklake", tmp_path / "old.ducklake"
    old.write_bytes(b"")
    path = str(repo.path)
    try:
        for args in (["--db", str(old), "collect", "git", path],  # the store exists
                     ["--db", "postgresql://u@h/db", "collect", "git", path],
                     ["--db", str(new), "collect", "git", "https://example.invalid/r.git"],
                     ["--db", str(new), "collect", "git", path, "--help"],
                     ["--db", str(new), "collect", "git", path, "--no-such-option"],
                     ["--db", str(new), "collect", "git", path, path],
                     ["--db", str(new), "collect", "github", "o/r"],
                     ["--db", str(new), "deployments"],
                     ["--db", str(new), "collect", "git", str(tmp_path / "missing")]):
            git_head_start.start(args)
            assert git_head_start._current is None, args
        git_head_start.start(["--db", str(new), "collect", "git", path])
        assert git_head_start._current is not None
        assert git_head_start.take(path, "other-id") is None  # other arguments: not this run's
        head = git_head_start.take(path, None)
        assert head is not None and head.location.local_path == repo.path.resolve()
        assert git_head_start.take(path, None) is None  # once
    finally:
        git_head_start.discard()
    assert git_head_start._current is None


def test_arguments_are_read_as_typer_reads_them() -> None:
    parse = git_head_start.parse
    request = parse(["--db=x.ducklake", "--debug", "collect", "git", "--repo-id", "r", "/src/a",
                     "--deploy-tags=^v", "--service", "collect"])
    assert request is not None
    assert (request.path, request.repo_id, request.db) == ("/src/a", "r", "x.ducklake")
    request = parse(["--config", "c.yaml", "--data-path", "d", "collect", "git", "p", "--repo-id=q"])
    assert request is not None and (request.path, request.repo_id, request.db) == ("p", "q", None)
    for args in ([], ["collect"], ["collect", "git"], ["--db"], ["collect", "git", "p", "--service"],
                 ["--verbose", "collect", "git", "p"], ["collect", "git", "--", "p"]):
        assert parse(args) is None, args


def test_option_lists_match_the_commands() -> None:
    """A new option of the app or of ``collect git`` must be added to git_head_start's lists (until
    then its command lines get no head start: slower, never wrong)."""
    import typer

    from analytics.cli.main import app

    root = typer.main.get_command(app)
    collect = root.commands["collect"]  # type: ignore[attr-defined]
    git = collect.commands["git"]

    def options(command: Any) -> tuple[set[str], set[str]]:
        valued = {name for p in command.params if p.param_type_name == "option" and not p.is_flag
                  for name in p.opts}
        flags = {name for p in command.params if p.param_type_name == "option" and p.is_flag
                 for name in p.opts}
        return valued, flags

    assert options(root) == (set(git_head_start.GLOBAL_VALUE_OPTIONS), set(git_head_start.GLOBAL_FLAGS))
    assert options(git) == (set(git_head_start.GIT_VALUE_OPTIONS), set())
    assert [p.name for p in git.params if p.param_type_name == "argument"] == ["path_or_url"]


def test_a_failed_command_stops_the_head_start(tmp_path: Path) -> None:
    """An invalid --deploy-tags fails before the store opens: git is stopped, its files removed."""
    repo = _repo(tmp_path / "svc")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc = cli_inprocess.run(["--db", str(tmp_path / "s.ducklake"), "collect", "git", str(repo.path),
                              "--deploy-tags", "(unclosed"], env={**os.environ, "TMPDIR": str(scratch)})
    assert proc.returncode == 2 and "not a valid regular expression" in proc.stderr
    assert git_head_start._current is None
    assert list(scratch.iterdir()) == []
    assert not (tmp_path / "s.ducklake").exists()


def test_a_broken_history_is_the_error_reported_when_the_deploy_branch_fails_too(tmp_path: Path) -> None:
    """Tags and deployments are written before the commits are loaded (git may still be walking);
    when a missing commit breaks both the history and the deploy branch's log, the history's
    error is the one line reported, as when the commits were loaded first."""
    repo = _repo(tmp_path / "svc")
    middle = repo.rev_parse("HEAD~3")
    repo.delete_object(middle)
    db = tmp_path / "s.ducklake"
    proc = cli_inprocess.run(["--db", str(db), "collect", "git", str(repo.path), "--deploy-branch", "main"])
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: cannot read the history of {repo.path}"), lines
    assert middle in lines[0]
