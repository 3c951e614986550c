"""What every store connection sets, whatever the machine: times in UTC, no progress bar on stdout,
spill files in a private folder rather than the working directory."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from analytics.store.connection import _track_written_files, connect, open_writer
from analytics.store.location import resolve
from tests.store_query import catalog_reads_of
from tests.store_workloads import SEMVER, Store, json_out, ok, run, run_here, write_history


def test_store_connections_show_utc_draw_no_progress_bar_and_spill_privately(tmp_path: Path) -> None:
    with open_writer(tmp_path / "s.ducklake", source="test"):
        pass
    cons = [connect(tmp_path / "s.ducklake"), connect(tmp_path / "s.ducklake")]
    try:
        settings = [c.execute(
            "SELECT current_setting('TimeZone'), current_setting('enable_progress_bar'), "
            "current_setting('temp_directory')").fetchone() for c in cons]
    finally:
        for c in cons:
            c.close()
    assert [s[:2] for s in settings if s] == [("UTC", False), ("UTC", False)]
    spill = [Path(str(s[2])) for s in settings if s]
    assert all(p.parent == Path(tempfile.gettempdir()) and f"-{os.getpid()}-" in p.name for p in spill), spill
    assert spill[0] != spill[1]  # DuckDB's spill file names repeat between databases
    assert not any(p.exists() for p in spill)  # created only when a query spills, removed on close


def test_listing_times_are_utc_whatever_the_machine_time_zone(tmp_path: Path) -> None:
    history = write_history(tmp_path / "tz.git", 60, release_every=20)
    store = Store(str(tmp_path / "tz.ducklake"))
    # the collection in this process (its time zone is not what is tested); each listing is a
    # process of its own, started with the zone in TZ as a machine set to it would start it
    ok(run_here(store, "collect", "git", str(history.path), "--deploy-tags", SEMVER, cwd=tmp_path))
    outputs = {}
    for zone in ("UTC", "Europe/Berlin", "America/Los_Angeles"):
        for fmt in ("json", "csv"):
            outputs[zone, fmt] = ok(run(store, "deployments", "--format", fmt, env={"TZ": zone},
                                        cwd=tmp_path)).stdout
    for fmt in ("json", "csv"):
        assert outputs["Europe/Berlin", fmt] == outputs["UTC", fmt] == outputs["America/Los_Angeles", fmt]
    rows = json_out(run(store, "deployments", "--format", "json", env={"TZ": "Asia/Kolkata"}, cwd=tmp_path))
    assert len(rows) == 3 and all(str(r["deployed_at"]).endswith("Z") for r in rows), json.dumps(rows)[:300]


def test_a_writers_file_log_is_turned_on_without_a_catalog_transaction(tmp_path: Path) -> None:
    """Each writer connection turns DuckDB's file-operation log on (connection._track_written_files);
    unqualified, ``CALL enable_logging(...)`` was looked up in the store first and started a
    transaction on the DuckLake catalog (3-10 ms against 0.4 ms, loaded machine)."""
    db = tmp_path / "s.ducklake"
    with open_writer(db, source="test"):
        pass
    con = connect(db)
    try:
        assert catalog_reads_of(con, lambda: _track_written_files(con, resolve(str(db)))) == 0
        # the same call unqualified does reach the catalog: the count above can fail
        assert catalog_reads_of(con, lambda: con.execute("CALL enable_logging('FileSystem')")) > 0
    finally:
        con.close()
