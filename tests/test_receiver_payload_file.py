"""A spooled (large) payload's ``webhook_deliveries`` row is a data file the receiver writes itself
and adds to the store (issue #16, session 9): ``analytics/webhooks/delivery_file.py`` writes the
one-row Parquet file with the payload copied from the spool file, never in memory, and the writer
registers it with ``ducklake_add_data_files`` in the batch's transaction. DuckDB's own INSERT held
the payload about three times over (+146 MiB for a 23.8 MiB payload).

These tests hold the added file to the INSERT it replaces (the writer's own fallback, taken where
the data path is not a local folder): the same rows for every reader, the same statistics in the
catalog, also after ``maintain`` merged the files and after a row was deleted; a transaction that
does not commit leaves no file behind; and the memory itself, relative to the payload, in a
process of its own, so that the test fails if the INSERT comes back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from analytics.config import Config
from analytics.store.connection import CATALOG, hold_store
from analytics.store.location import resolve
from analytics.store.maintenance import maintain
from analytics.webhooks.writer import Delivery, DeliveryWriter
from tests.store_query import query

T0 = datetime(2026, 5, 1, 9, 30, 15, 123456, tzinfo=UTC)
AUDIT = ("SELECT provider, delivery_id, event, received_at, body_sha256, payload::VARCHAR, typeof(payload),"
         " rows_written, payload->>'$.kind' FROM webhook_deliveries ORDER BY delivery_id")


def payload_text(n: int, size: int) -> str:
    """JSON text as a sender writes it: raw UTF-8 (not escaped), quotes and backslashes inside."""
    return json.dumps({"kind": f"push-{n}", "note": 'quote " back \\ slash', "who": "Zoë Ŝmith 日本",
                       "pad": "é✓" * (size // 5)}, ensure_ascii=False)


def spooled(folder: Path, n: int, size: int = 300_000, event: str = "push") -> Delivery:
    path = folder / f"payload-{n}.json"
    path.write_text(payload_text(n, size), encoding="utf-8")
    return Delivery(provider="github", delivery_id=f"delivery-{n:02d}", event=event, body=b"", payload={},
                    rows={}, finalize=None, payload_file=str(path), body_sha256=f"{n:064x}",
                    received_at=T0 + timedelta(minutes=n))


def store(db: Path, made: list[Delivery], *, insert: bool = False,
          monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each delivery in its own batch; ``insert``: the writer's fallback, DuckDB's INSERT."""
    writer = DeliveryWriter(db, Config())
    with monkeypatch.context() as patch:
        if insert:
            patch.setattr(DeliveryWriter, "_deliveries_folder", lambda self, con: "")
        writer.start()
        try:
            outcomes = []
            for delivery in made:
                writer.submit(delivery)
                outcomes.append(delivery.future.result(timeout=120))
            return outcomes
        finally:
            writer.stop()


def catalog(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with hold_store(db) as con:
        return con.execute(sql.format(meta=f"__ducklake_metadata_{CATALOG}")).fetchall()


def stats(db: Path) -> list[tuple[Any, ...]]:
    """webhook_deliveries' column statistics as DuckLake keeps them, per file (in file order)."""
    return catalog(db, (
        "SELECT f.begin_snapshot, c.column_name, s.value_count, s.null_count, s.min_value, s.max_value"
        " FROM {meta}.ducklake_file_column_stats AS s"
        " JOIN {meta}.ducklake_data_file AS f USING (data_file_id)"
        " JOIN {meta}.ducklake_column AS c ON c.column_id = s.column_id AND c.table_id = s.table_id"
        " JOIN {meta}.ducklake_table AS t ON t.table_id = s.table_id"
        " WHERE t.table_name = 'webhook_deliveries' AND f.end_snapshot IS NULL AND c.end_snapshot IS NULL"
        " AND c.column_name <> 'payload' ORDER BY 1, 2"))


def added_files(db: Path) -> int:
    """Data files of webhook_deliveries DuckLake took by name (what ducklake_add_data_files does)."""
    return int(catalog(db, "SELECT count(*) FROM {meta}.ducklake_data_file AS f"
                           " JOIN {meta}.ducklake_table AS t USING (table_id)"
                           " WHERE t.table_name = 'webhook_deliveries' AND f.mapping_id IS NOT NULL"
                           " AND f.end_snapshot IS NULL")[0][0])


@pytest.mark.parametrize("catalog", ["embedded", "postgresql"])
def test_an_added_payload_file_reads_back_as_the_insert_stores_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, catalog: str
) -> None:
    sizes = [300_000, 1_000, 2_000_000, 300_000]
    events = ["push", "", "pull_request", "push"]
    (tmp_path / "again").mkdir()
    kinds = list(enumerate(zip(sizes, events, strict=True)))
    made, again = ([spooled(folder, n, size, event) for n, (size, event) in kinds]
                   for folder in (tmp_path, tmp_path / "again"))
    added: Any = tmp_path / "added.ducklake"
    inserted: Any = tmp_path / "inserted.ducklake"
    if catalog == "postgresql":  # two databases on the test server, each with its data folder
        pg = request.getfixturevalue("pg_database")  # skips, with the reason, where it cannot start
        other = f"{pg.name}_insert"
        pg.server.new_database(other)
        request.addfinalizer(lambda: pg.server.drop_database(other))
        added = resolve(pg.url, str(tmp_path / "added-data"))
        inserted = resolve(pg.server.url_for(other), str(tmp_path / "inserted-data"))
    assert store(added, made, monkeypatch=monkeypatch) == ["stored"] * 4
    assert store(inserted, again, insert=True, monkeypatch=monkeypatch) == ["stored"] * 4
    assert added_files(added) == 4 and added_files(inserted) == 0  # each way took its own path
    rows = query(added, AUDIT)
    assert rows == query(inserted, AUDIT)
    assert [r[5] for r in rows] == [payload_text(n, size) for n, size in enumerate(sizes)]
    assert {r[6] for r in rows} == {"JSON"} and rows[2][3] == T0 + timedelta(minutes=2)
    assert stats(added) == stats(inserted)  # the same min/max/null counts: a delivery id's file is skipped
    assert not list(tmp_path.glob("**/payload-*.json"))  # settled: the spool files removed
    # A redelivery is a duplicate both ways, and a lookup by id finds the one row.
    dup = spooled(tmp_path, 0)
    assert store(added, [dup], monkeypatch=monkeypatch) == ["duplicate"]
    assert query(added, "SELECT count(*) FROM webhook_deliveries WHERE delivery_id = 'delivery-02'") == [(1,)]
    # maintain merges the added files with each other (DuckLake's own compaction) and after a
    # deletion every reader still sees the same rows both ways.
    for db in (added, inserted):
        with hold_store(db) as con:
            con.execute("DELETE FROM webhook_deliveries WHERE delivery_id = 'delivery-01'")
        maintain(db, retention=0)
    assert query(added, AUDIT) == query(inserted, AUDIT) == [r for r in rows if r[1] != "delivery-01"]


def test_a_batch_that_does_not_commit_leaves_no_data_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "store.ducklake"
    assert store(db, [spooled(tmp_path, 0)], monkeypatch=monkeypatch) == ["stored"]
    folder = next(tmp_path.glob("store.ducklake.files/main/webhook_deliveries"))
    before = set(folder.iterdir())
    assert len(before) == 1
    real_add = DeliveryWriter._add_spooled
    # The first attempt adds its file, then another writer commits to the store before this
    # transaction does: its COMMIT conflicts, it is rolled back and runs again (a new file).
    attempts: list[int] = []

    def add_then_someone_commits(self: DeliveryWriter, con: duckdb.DuckDBPyConnection,
                                 row: tuple[Any, ...]) -> bool:
        done = real_add(self, con, row)
        attempts.append(len(set(folder.iterdir()) - before))
        if len(attempts) == 1:
            with hold_store(db) as other:
                other.execute("INSERT INTO collector_state VALUES ('test', 'k', 'v', now())")
        return done

    monkeypatch.setattr(DeliveryWriter, "_add_spooled", add_then_someone_commits)
    assert store(db, [spooled(tmp_path, 1)], monkeypatch=monkeypatch) == ["stored"]
    assert len(attempts) >= 2 and attempts[0] == 1  # the first attempt's file existed...
    after = set(folder.iterdir()) - before
    assert len(after) == 1  # ...and only the committed attempt's is left
    assert query(db, "SELECT count(*) FROM webhook_deliveries WHERE delivery_id = 'delivery-01'") == [(1,)]

    # A failure after the file was added (the store goes away): 503, nothing stored, no file.
    def add_then_fail(self: DeliveryWriter, con: duckdb.DuckDBPyConnection, row: tuple[Any, ...]) -> bool:
        real_add(self, con, row)
        raise duckdb.IOException("the disk went away")

    monkeypatch.setattr(DeliveryWriter, "_add_spooled", add_then_fail)
    failed = spooled(tmp_path, 2)
    writer = DeliveryWriter(db, Config())
    writer.start()
    try:
        writer.submit(failed)
        with pytest.raises(Exception, match="disk went away"):
            failed.future.result(timeout=120)
    finally:
        writer.stop()
    assert set(folder.iterdir()) - before == after
    assert query(db, "SELECT count(*) FROM webhook_deliveries WHERE delivery_id = 'delivery-02'") == [(0,)]


MEASURE = """
import json, os, sys, gc
from pathlib import Path
from analytics.config import Config
from analytics.webhooks.writer import Delivery, DeliveryWriter
folder, insert = Path(sys.argv[1]), sys.argv[2] == "insert"
def rss(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
writer = DeliveryWriter(folder / "store.ducklake", Config())
if insert:
    DeliveryWriter._deliveries_folder = lambda self, con: ""
writer.start()
def spooled(n, size):
    path = folder / f"p{n}.json"
    path.write_text(json.dumps({"n": n, "pad": "x" * size}))
    return Delivery(provider="github", delivery_id=f"d{n}", event="push", body=b"", payload={}, rows={},
                    finalize=None, payload_file=str(path), body_sha256="0" * 64)
def deliver(d):
    writer.submit(d)
    assert d.future.result(timeout=120) == "stored"
deliver(spooled(0, 300_000))  # warm: the store, the imports, the first data file
size = 16 * 2**20
large = spooled(1, size)
gc.collect()
before = rss("VmRSS")
with open("/proc/self/clear_refs", "w") as clear:
    clear.write("5")
deliver(large)
print((rss("VmHWM") - before) / size)
writer.stop()
"""


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_storing_a_large_payload_grows_the_writer_by_far_less_than_the_payload(tmp_path: Path) -> None:
    """The payload never passes through the writer's memory; DuckDB's INSERT of the same payload
    (the fallback, measured here too so the test shows the difference) grows it by about 3x+."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}

    def growth(way: str) -> float:
        folder = tmp_path / way
        folder.mkdir()
        done = subprocess.run([sys.executable, "-c", MEASURE, str(folder), way], env=env, check=True,
                              capture_output=True, text=True, timeout=300)
        return float(done.stdout.strip().splitlines()[-1])

    added, inserted = growth("add"), growth("insert")
    assert inserted > 1.0, inserted  # what the INSERT costs: the test can tell the two apart
    assert added < 0.5, (added, inserted)
    print(f"growth per payload byte: added file {added:.2f}, INSERT {inserted:.2f}")


def test_the_row_file_reads_back_in_duckdb_and_pyarrow_with_nulls_and_non_ascii(tmp_path: Path) -> None:
    """The Parquet file itself, read by two independent readers: a null where the column allows it,
    non-ASCII text in a small column and in the payload, the timestamp to the microsecond."""
    import pyarrow.parquet as pq

    from analytics.webhooks.delivery_file import write_row_file

    columns = [("provider", "VARCHAR"), ("delivery_id", "VARCHAR"), ("event", "VARCHAR"),
               ("received_at", "TIMESTAMP WITH TIME ZONE"), ("body_sha256", "VARCHAR"), ("payload", "JSON"),
               ("rows_written", "INTEGER")]
    source = tmp_path / "payload.json"
    source.write_text(payload_text(7, 5000), encoding="utf-8")
    target = tmp_path / "row.parquet"
    row = ["gitlab", "Zoë-1", None, T0, "f" * 64, None, 2**31 - 1]
    size = write_row_file(str(target), columns, row, 5, str(source))
    assert size == target.stat().st_size
    expected = ("gitlab", "Zoë-1", None, T0, "f" * 64, payload_text(7, 5000), 2**31 - 1)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    assert con.execute(f"SELECT *, typeof(payload) FROM '{target}'").fetchall() == [(*expected, "JSON")]
    table = pq.read_table(target)
    assert tuple(table.to_pylist()[0].values()) == expected
    stats = pq.ParquetFile(target).metadata.row_group(0)
    assert stats.column(1).statistics.min == "Zoë-1" and stats.column(2).statistics.null_count == 1
