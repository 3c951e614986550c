"""Spool files a killed receiver leaves in its temporary folder are removed when a receiver starts,
and only those: a young file may be another receiver's delivery in flight."""
from __future__ import annotations

import os
import time
from pathlib import Path

from analytics.webhooks.server import SPOOL_PREFIX, remove_stale_spools
from tests.webhook_senders import receiver

HOUR = 3600


def _aged(path: Path, seconds: float, text: str = "{}") -> Path:
    path.write_text(text)
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def test_only_old_spool_files_are_removed(tmp_path: Path) -> None:
    old = _aged(tmp_path / f"{SPOOL_PREFIX}old.json", 2 * HOUR)
    young = _aged(tmp_path / f"{SPOOL_PREFIX}young.json", 60)
    other = _aged(tmp_path / "someone-else.json", 2 * HOUR)
    other_suffix = _aged(tmp_path / f"{SPOOL_PREFIX}old.txt", 2 * HOUR)
    folder = tmp_path / f"{SPOOL_PREFIX}dir.json"
    folder.mkdir()
    os.utime(folder, (time.time() - 2 * HOUR,) * 2)
    target = _aged(tmp_path / "kept-target", 2 * HOUR)
    link = tmp_path / f"{SPOOL_PREFIX}link.json"
    link.symlink_to(target)

    assert remove_stale_spools(str(tmp_path)) == 1
    assert not old.exists()
    assert young.exists() and other.exists() and other_suffix.exists() and folder.is_dir()
    assert link.is_symlink() and target.exists()
    assert remove_stale_spools(str(tmp_path / "missing")) == 0


def test_a_starting_receiver_removes_what_a_killed_one_left(tmp_path: Path) -> None:
    spool = tmp_path / "tmp"
    spool.mkdir()
    stale = _aged(spool / f"{SPOOL_PREFIX}killed.json", 3 * HOUR, '{"big": "payload"}')
    in_flight = _aged(spool / f"{SPOOL_PREFIX}in-flight.json", 5)
    env = {"GITOPS_DORA_GITHUB_SECRET": "s3cret-for-tests", "TMPDIR": str(spool)}
    with receiver(tmp_path / "s.ducklake", env) as rx:
        assert rx.alive()
        assert not stale.exists()
        assert in_flight.exists()
    err = rx.process.stderr.read().decode() if rx.process.stderr else ""
    assert f"removed 1 payload file(s) a stopped receiver left in {spool}" in err
