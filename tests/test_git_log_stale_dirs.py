"""A killed ``collect git`` leaves its chunk folder (the repository's whole ``git log``) behind; the
next run removes it once its process is gone and it has been left alone for an hour, and nothing
else (analytics/collectors/git_log.remove_stale_log_dirs)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import cli_inprocess


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _aged(path: Path, age: float) -> Path:
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def _log_dir(root: Path, pid: int, name: str, *, age: float) -> Path:
    folder = root / f"gitops-dora-log-{pid}-{name}"
    folder.mkdir()
    (folder / "git-log.bin").write_bytes(b"a commit message\0")
    return _aged(folder, age)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    subprocess.run(["git", "-C", str(path), "-c", "user.name=a", "-c", "user.email=a@example.com",
                    "commit", "-q", "--allow-empty", "-m", "first"], check=True)
    return path


def test_collect_git_removes_only_stale_folders_of_gone_processes(tmp_path: Path, repo: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    dead, hour = _dead_pid(), 3600.0
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = _log_dir(scratch, dead, "stale", age=2 * hour)
        recent = _log_dir(scratch, dead, "recent", age=hour / 2)  # maybe another namespace's, in use
        alive = _log_dir(scratch, sleeper.pid, "alive", age=2 * hour)
        old_style = scratch / "gitops-dora-log-abcdefgh"  # no process id: never guessed at
        old_style.mkdir()
        _aged(old_style, 2 * hour)
        a_file = scratch / f"gitops-dora-log-{dead}-file"
        a_file.write_text("not a folder")
        _aged(a_file, 2 * hour)
        other = scratch / "unrelated"
        other.mkdir()

        env = {**os.environ, "TMPDIR": str(scratch)}
        result = cli_inprocess.run(["--db", str(tmp_path / "s.ducklake"), "collect", "git", str(repo)],
                                   env=env)
        assert result.returncode == 0, result.stderr
        assert "1 new commits" in result.stderr
    finally:
        sleeper.kill()
        sleeper.wait()
    assert not stale.exists()
    left = sorted(p.name for p in scratch.iterdir())
    # the run's own folder is gone too; everything that is not provably abandoned stays
    assert left == sorted([recent.name, alive.name, old_style.name, a_file.name, other.name])


def test_the_chunk_folder_is_named_for_its_process(tmp_path: Path, repo: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    from analytics.collectors.git_log import LogReader, remove_stale_log_dirs

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    reader = LogReader(repo, [])
    try:
        assert reader.tmp.parent == tmp_path
        assert reader.tmp.name.startswith(f"gitops-dora-log-{os.getpid()}-")
        # this process's own folder is never taken for a stale one, however old it looks
        assert remove_stale_log_dirs(tmp_path, now=time.time() + 10 * 3600) == []
        assert reader.tmp.exists()
    finally:
        reader.abort()
    assert not reader.tmp.exists()


@pytest.mark.parametrize("number", [2**33, 10**30])
def test_a_folder_named_for_no_possible_process_is_left_alone_without_an_error(tmp_path: Path,
                                                                              number: int) -> None:
    """A number no process id can be (os.kill raised OverflowError, which failed the collection
    with exit 1): not a folder this code made, so it stays, and the sweep goes on."""
    from analytics.collectors.git_log import remove_stale_log_dirs

    odd = _log_dir(tmp_path, number, "odd", age=7200.0)
    stale = _log_dir(tmp_path, _dead_pid(), "stale", age=7200.0)
    assert remove_stale_log_dirs(tmp_path) == [stale]
    assert odd.exists()
