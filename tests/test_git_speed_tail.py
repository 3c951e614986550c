"""What ``collect git`` does after git's walk ends runs alone on one core and decides the wall time
of a first collection (docs/performance.md, "Git ingest, session 9"): these tests check that the
work moved out of it stays out. The watermark is written before the commits' load finishes, the
unit runs without cyclic garbage collection, and the process's shutdown skips the collections of
everything it imported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from analytics.collectors import git as git_collector
from analytics.collectors import git_log
from analytics.collectors.git_source import locate, ref_tips
from tests.gitrepo import GitRepo

ROOT = Path(__file__).resolve().parent.parent
TAGS = r"^v[0-9.]+$"


def _repo(path: Path, commits: int = 12) -> GitRepo:
    repo = GitRepo.init(path)
    for i in range(commits):
        repo.commit(f"change {i} with a subject long enough to fill the log",
                    at=f"2024-05-{1 + i % 28:02d}T10:{i % 60:02d}:00+00:00")
        if i % 5 == 2:
            repo.annotated_tag(f"v1.{i}.0", at=f"2024-05-{1 + i % 28:02d}T11:{i % 60:02d}:00+00:00")
    return repo


def test_watermark_is_written_before_the_commits_load_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Read inside the unit's own transaction when the load finishes: the new tips are there."""
    repo = _repo(tmp_path / "repo")
    location = locate(str(repo.path))
    tips = ref_tips(location.local_path)
    seen: list[object] = []
    original = git_log.CommitLoad.finish

    def finish(self: git_log.CommitLoad) -> int:
        seen.append(self.con.execute(
            "SELECT value FROM collector_state WHERE source = 'git:repo' AND key = 'ref_tips'").fetchall())
        return original(self)

    monkeypatch.setattr(git_log.CommitLoad, "finish", finish)
    options = git_collector.GitOptions(service="svc", environment="production", deploy_tags=TAGS)
    summary = git_collector.collect(tmp_path / "store.ducklake", location, options, tips)
    assert summary.new_commits == 12
    import json

    assert seen == [[(json.dumps(tips, sort_keys=True),)]]


_EXIT_PROBE = """
import atexit, gc, sys
# registered before the command runs, so it runs after the command's own exit handlers
atexit.register(lambda: print(f"FROZEN={{gc.get_freeze_count()}}", flush=True))
from analytics.cli.main import run
run(sys.argv[1:])
"""


def test_the_process_exits_without_collecting_what_it_imported(tmp_path: Path) -> None:
    """By the time the interpreter tears down its modules, the objects are frozen (out of the
    cyclic collector's reach); the command's result is the usual one."""
    repo = _repo(tmp_path / "repo")
    proc = subprocess.run(
        [sys.executable, "-c", _EXIT_PROBE.format(), "--db", str(tmp_path / "store.ducklake"),
         "collect", "git", str(repo.path), "--deploy-tags", TAGS],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "12 new commits" in proc.stderr
    frozen = [line for line in proc.stdout.splitlines() if line.startswith("FROZEN=")]
    assert len(frozen) == 1 and int(frozen[0].removeprefix("FROZEN=")) > 10_000


@pytest.mark.parametrize("enabled_before", [True, False])
def test_the_unit_runs_without_cyclic_gc_and_puts_the_setting_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, enabled_before: bool,
) -> None:
    import gc

    repo = _repo(tmp_path / "repo")
    location = locate(str(repo.path))
    seen: list[bool] = []
    original = git_log.CommitLoad.finish

    def finish(self: git_log.CommitLoad) -> int:
        seen.append(gc.isenabled())
        return original(self)

    monkeypatch.setattr(git_log.CommitLoad, "finish", finish)
    options = git_collector.GitOptions(service="svc", environment="production", deploy_tags=TAGS)
    was = gc.isenabled()
    (gc.enable if enabled_before else gc.disable)()
    try:
        summary = git_collector.collect(tmp_path / "store.ducklake", location, options,
                                        ref_tips(location.local_path))
        after = gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()
    assert summary.new_commits == 12 and summary.changes == 8  # up to the last release tag
    assert seen == [False]
    assert after is enabled_before
