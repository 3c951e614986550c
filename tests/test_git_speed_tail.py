"""What ``collect git`` does after git's walk ends is the part of a first collection nobody waits
in parallel with (docs/performance.md, "Git ingest, session 9"): these tests check the work that
was moved out of it stays out. The watermark is written before the commits' load finishes; the
reader cuts a short chunk while the loader waits, so the load after git's exit is small; and the
process's shutdown skips the cyclic garbage collections of everything it imported."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
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


_PAUSING_GIT = """#!{python}
import os, subprocess, sys, time
real = {real!r}
if "log" not in sys.argv[1:]:
    os.execv(real, [real, *sys.argv[1:]])
out = subprocess.run([real, *sys.argv[1:]], stdin=sys.stdin, capture_output=True, check=True).stdout
head = {head}
sys.stdout.buffer.write(out[:head])
sys.stdout.buffer.flush()
release = {release!r}
while not os.path.exists(release):
    time.sleep(0.01)
sys.stdout.buffer.write(out[head:])
"""


def test_a_waiting_loader_gets_a_short_chunk_while_git_still_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """git (through a wrapper) writes part of its log, then holds the rest back until released.
    A loader waiting for a chunk gets what was written, cut at a record boundary, while git is
    still running; before, nothing was cut short of CHUNK_BYTES until git exited."""
    repo = _repo(tmp_path / "repo", commits=40)
    real = subprocess.run(["which", "git"], capture_output=True, text=True, check=True).stdout.strip()
    full = subprocess.run(git_log.log_command(repo.path), input="", capture_output=True, check=True).stdout
    head = len(full) // 2
    release = tmp_path / "release"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "git"
    wrapper.write_text(_PAUSING_GIT.format(python=sys.executable, real=real, head=head, release=str(release)))
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(git_log, "HUNGRY_CHUNK_BYTES", 512, raising=False)
    # a safety net only: without the short cut the first chunk would come when git exits
    timer = threading.Timer(20, release.touch)
    timer.start()
    reader = git_log.LogReader(repo.path, [])
    try:
        first = reader.ready(wait=True)
        released_before = release.exists()
        release.touch()
        rest = [chunk for batch in reader.batches() for chunk in batch]
        reader.finish()
        assert not released_before, "the first chunk came only once git had written everything"
        assert first and not reader.ready() and reader.complete
        loaded = b"".join(chunk.path.read_bytes() for chunk in [*first, *rest])
        assert len(b"".join(chunk.path.read_bytes() for chunk in first)) < len(loaded)
        assert loaded == git_log.split_records(full, {})
    finally:
        timer.cancel()
        reader.abort()


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
