"""``tests/store_fixture.copy_store``, which many modules now use instead of building a store per test
(issue #16): the copy must read exactly as the original (every table, the same snapshots) and be a
store of its own (writing to it leaves the original's catalog and files as they were)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from analytics.store.connection import latest_snapshot_id, open_reader, open_writer
from tests.store_fixture import Deploy, copy_store, write_history


def _everything(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    con = open_reader(db, install_views=False)
    try:
        tables = [str(r[0]) for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'lake' ORDER BY 1"
        ).fetchall()]
        return {t: con.execute(f'SELECT * FROM "{t}" ORDER BY ALL').fetchall() for t in tables}
    finally:
        con.close()


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_copy_reads_as_the_original_and_writes_apart(tmp_path: Path) -> None:
    original = write_history(
        tmp_path / "a" / "s.ducklake", services={"pay": "core"},
        commits={"c1": ("repo", "2026-01-01T10:00"), "c2": ("repo", "2026-01-02T10:00")},
        deployments={"D1": Deploy("pay", "repo", "2026-01-03T10:00", ["c1", "c2"])})
    before = _everything(original)
    assert before["deployments"] and before["deployment_changes"]
    catalog, data = original.read_bytes(), _files(Path(str(original) + ".files"))

    copy = copy_store(original, tmp_path / "b" / "s.ducklake")
    assert _everything(copy) == before
    assert latest_snapshot_id(copy) == latest_snapshot_id(original)

    with open_writer(copy, source="test") as w:   # a write to the copy...
        w.upsert("services", [{"name": "shop", "team": "web"}])
    assert ("shop", "web") in _everything(copy)["services"]
    # ...reaches neither the original's catalog nor its data folder
    assert _everything(original) == before
    assert original.read_bytes() == catalog
    assert _files(Path(str(original) + ".files")) == data
