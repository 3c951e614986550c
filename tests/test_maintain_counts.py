"""`maintain` says how many snapshots it expired, read off the catalog, and `--as-of` names what is
left: a run that merged nothing said "expired 1 snapshots" with nothing expired (it counted a
merge snapshot that was never written), and a store with one snapshot said "its snapshots are 13
(...) to 13 (...)"."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests import cli_inprocess
from tests.child_env import child_env


def snapshots(db: Path) -> list[int]:
    with sqlite3.connect(db) as con:
        return [int(r[0]) for r in con.execute("SELECT snapshot_id FROM ducklake_snapshot ORDER BY 1")]


def gitops(db: Path, *args: str) -> tuple[int, str]:
    done = cli_inprocess.run(["--db", str(db), *args], env=child_env())
    return done.returncode, done.stderr


def test_expired_snapshots_are_counted_and_as_of_names_what_is_left(tmp_path: Path) -> None:
    db = tmp_path / "m.ducklake"
    for n in range(3):  # three imports, three snapshots besides the store's first ones
        csv = tmp_path / f"incidents-{n}.csv"
        csv.write_text(f"id,service,created_at,resolved_at\ni{n},api,2026-01-0{n + 1}T10:00:00Z,\n")
        code, err = gitops(db, "import", str(csv))
        assert code == 0, err
    before = snapshots(db)
    assert len(before) >= 4

    code, err = gitops(db, "maintain", "--retention-days", "0")
    assert code == 0, err
    left = snapshots(db)
    # ids are handed out in order from 0 and none had been expired: every id below the newest that
    # is gone was expired by this run (the flush and the merge write snapshots of their own first)
    expired = left[-1] + 1 - len(left)
    assert expired >= len(before) - 1 and set(left) < set(range(left[-1] + 1))
    word = "snapshot" if expired == 1 else "snapshots"
    assert f"expired {expired} {word} older than 0 days" in err, err

    code, err = gitops(db, "maintain", "--retention-days", "0")   # nothing left to merge or expire
    assert code == 0 and snapshots(db) == left
    assert "expired 0 snapshots older than 0 days" in err, err

    code, err = gitops(db, "metrics", "--as-of", str(before[0]))
    assert code == 2
    if len(left) == 1:
        assert f"(its only snapshot is {left[0]} (" in err, err
    else:
        assert f"(its {len(left)} snapshots are {left[0]} (" in err and f" to {left[-1]} (" in err, err
