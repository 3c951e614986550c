"""The receiver-made payload data file (``analytics/webhooks/delivery_file.py``, registered with
``ducklake_add_data_files`` by ``writer._add_spooled``) against what the store may do around it.

The file is written for the columns ``webhook_deliveries`` had when the writer opened the store.
Another process may change that table while the receiver runs (a newer gitops-dora's ``collect``
migrating the store adds a column; docs/architecture.md: ADD COLUMN migrations): DuckLake then
refuses a file without the new column, where DuckDB's INSERT (which names its columns) stores the
row. A large delivery must not be refused (422: the sender never sends it again) for that.
Real stores, the writer's own thread; the HTTP side of large bodies is in
tests/test_receiver_large_bodies.py and tests/test_receiver_payload_file.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from analytics.config import Config
from analytics.store.connection import CATALOG, hold_store
from analytics.webhooks import writer as writer_module
from analytics.webhooks.writer import Delivery, DeliveryWriter
from tests.store_query import query


def spooled(folder: Path, n: int) -> Delivery:
    path = folder / f"payload-{n}.json"
    path.write_text(json.dumps({"n": n, "pad": "x" * 300_000}), encoding="utf-8")
    return Delivery(provider="github", delivery_id=f"delivery-{n}", event="push", body=b"", payload={},
                    rows={}, finalize=None, payload_file=str(path), body_sha256=f"{n:064x}")


def outcome(writer: DeliveryWriter, delivery: Delivery) -> str:
    writer.submit(delivery)
    try:
        return delivery.future.result(timeout=120)
    except Exception as exc:  # noqa: BLE001 - the answer the sender would get, as text
        return f"{type(exc).__name__}: {exc}"


def added_files(db: Path) -> int:
    """webhook_deliveries' live data files DuckLake took by name (ducklake_add_data_files)."""
    with hold_store(db) as con:
        meta = f"__ducklake_metadata_{CATALOG}"
        return int(con.execute(
            f"SELECT count(*) FROM {meta}.ducklake_data_file AS f"
            f" JOIN {meta}.ducklake_table AS t USING (table_id)"
            " WHERE t.table_name = 'webhook_deliveries' AND f.mapping_id IS NOT NULL"
            " AND f.end_snapshot IS NULL AND t.end_snapshot IS NULL").fetchall()[0][0])


def test_a_column_added_by_another_process_while_the_receiver_runs(tmp_path: Path) -> None:
    db = tmp_path / "store.ducklake"
    writer = DeliveryWriter(db, Config())
    writer.start()
    try:
        assert outcome(writer, spooled(tmp_path, 0)) == "stored"
        assert added_files(db) == 1  # the receiver's own file
        with hold_store(db) as other:  # a newer version's migration, in another process
            other.execute("ALTER TABLE webhook_deliveries ADD COLUMN note VARCHAR DEFAULT 'none'")
        # The writer still has the columns it read when it opened the store: its file would lack
        # ``note``, which DuckLake refuses. It stores the row the INSERT way instead, twice over
        # (the second time with the connection the first left as it was).
        assert outcome(writer, spooled(tmp_path, 1)) == "stored"
        assert outcome(writer, spooled(tmp_path, 2)) == "stored"
    finally:
        writer.stop()
    rows = query(db, "SELECT delivery_id, note, length(payload::VARCHAR), payload->>'$.n'"
                     " FROM webhook_deliveries ORDER BY delivery_id")
    assert rows == [("delivery-0", "none", 300_019, "0"), ("delivery-1", "none", 300_019, "1"),
                    ("delivery-2", "none", 300_019, "2")]
    assert not list(tmp_path.glob("payload-*.json"))  # settled: the spool files removed
    # only the committed files are left in the table's folder
    folder = tmp_path / "store.ducklake.files" / "main" / "webhook_deliveries"
    assert len(list(folder.iterdir())) == 3


def test_a_column_added_between_the_check_and_the_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ALTER commits after the writer looked at the table but before its COMMIT: the row is
    stored all the same, with the new column's default, and no file of a failed attempt stays."""
    db = tmp_path / "store.ducklake"
    writer = DeliveryWriter(db, Config())
    writer.start()
    real = writer_module.write_row_file
    altered: list[bool] = []

    def write_then_alter(*args: Any, **kwargs: Any) -> int:
        size = real(*args, **kwargs)
        if not altered:
            altered.append(True)
            with hold_store(db) as other:
                other.execute("ALTER TABLE webhook_deliveries ADD COLUMN note VARCHAR DEFAULT 'none'")
        return size

    monkeypatch.setattr(writer_module, "write_row_file", write_then_alter)
    try:
        assert outcome(writer, spooled(tmp_path, 0)) == "stored"
        assert outcome(writer, spooled(tmp_path, 1)) == "stored"
    finally:
        writer.stop()
    assert altered == [True]
    assert query(db, "SELECT delivery_id, note, payload->>'$.n' FROM webhook_deliveries ORDER BY 1") == [
        ("delivery-0", "none", "0"), ("delivery-1", "none", "1")]
    folder = tmp_path / "store.ducklake.files" / "main" / "webhook_deliveries"
    assert len(list(folder.iterdir())) == 2


@pytest.mark.parametrize("when", ["before", "while"])
def test_a_partitioned_deliveries_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, when: str) -> None:
    """DuckLake takes no file without partition values into a partitioned table ("contains an
    invalid partition value"): the writer INSERTs there, whether the table was partitioned before
    it opened the store (it does not write a file at all then) or by another process since."""
    db = tmp_path / "store.ducklake"
    partition = "ALTER TABLE webhook_deliveries SET PARTITIONED BY (provider)"
    written: list[str] = []
    real = writer_module.write_row_file

    def counted(target: str, *args: Any, **kwargs: Any) -> int:
        written.append(target)
        return int(real(target, *args, **kwargs))

    monkeypatch.setattr(writer_module, "write_row_file", counted)
    writer = DeliveryWriter(db, Config())
    if when == "before":
        writer.open()  # makes the store
        writer._close()
        with hold_store(db) as con:
            con.execute(partition)
    writer.start()
    try:
        if when == "while":
            assert outcome(writer, spooled(tmp_path, 0)) == "stored"  # a file of its own, unpartitioned
            with hold_store(db) as other:
                other.execute(partition)
        assert outcome(writer, spooled(tmp_path, 1)) == "stored"
        assert outcome(writer, spooled(tmp_path, 2)) == "stored"
    finally:
        writer.stop()
    assert len(written) == (0 if when == "before" else 2)  # "while": the first, and the refused one
    expected = [(f"delivery-{n}", str(n)) for n in range(0 if when == "while" else 1, 3)]
    assert query(db, "SELECT delivery_id, payload->>'$.n' FROM webhook_deliveries ORDER BY 1") == expected
    found = query(db, "SELECT count(*) FROM webhook_deliveries WHERE provider = 'github'")
    assert found == [(len(expected),)]
    folder = tmp_path / "store.ducklake.files" / "main" / "webhook_deliveries"
    on_disk = {str(p) for p in folder.iterdir()}
    assert [path in on_disk for path in written] == ([] if when == "before" else [True, False])
    assert len(list(folder.glob("provider=github/*.parquet"))) == 2  # the INSERTs' files


def test_a_filter_on_any_column_finds_the_added_files_row(tmp_path: Path) -> None:
    """DuckLake skips a data file by the min/max the receiver wrote into its footer: wrong ones would
    hide the row from a filtered query, silently. Values where an encoding slip would show: non-ASCII
    text (UTF-8 bytes order), a time before 1970 and one with microseconds, an empty event."""
    from datetime import UTC, datetime

    db = tmp_path / "store.ducklake"
    times = [datetime(1965, 3, 1, 0, 0, 0, 1, tzinfo=UTC),
             datetime(2026, 5, 1, 9, 30, 15, 999999, tzinfo=UTC),
             datetime(2038, 1, 19, 3, 14, 8, tzinfo=UTC)]
    ids = ["dé-ü 1", "Ω-2", "z-3"]
    events = ["日本", "", "push"]
    writer = DeliveryWriter(db, Config())
    writer.start()
    try:
        for n, (when, name, event) in enumerate(zip(times, ids, events, strict=True)):
            made = spooled(tmp_path, n)
            made.delivery_id, made.event, made.received_at = name, event, when
            assert outcome(writer, made) == "stored"
    finally:
        writer.stop()
    assert added_files(db) == 3
    for n, (when, name, event) in enumerate(zip(times, ids, events, strict=True)):
        filters: list[tuple[str, list[Any]]] = [
            ("delivery_id = ?", [name]), ("event = ?", [event]), ("received_at = ?", [when]),
            ("received_at BETWEEN ? AND ?", [when, when]), ("body_sha256 = ?", [f"{n:064x}"]),
            ("payload->>'$.n' = ?", [str(n)])]
        for where, params in filters:
            found = query(db, f"SELECT delivery_id FROM webhook_deliveries WHERE {where}", params)
            assert found == [(name,)], where
    assert query(db, "SELECT count(*) FROM webhook_deliveries WHERE provider = 'github' AND rows_written = 0"
                     " AND received_at > TIMESTAMPTZ '1965-03-01 00:00:00+00'") == [(3,)]


def test_a_data_path_under_the_home_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A data path given as ``~/...`` (GITOPS_DORA_DATA_PATH from a service's environment file: no
    shell expands it) is the home folder's for DuckDB. The receiver's file goes where DuckLake
    looks for it, not to a folder named ``~`` in the receiver's working folder."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GITOPS_DORA_DATA_PATH", "~/lake")
    monkeypatch.chdir(work)
    db = tmp_path / "store.ducklake"
    writer = DeliveryWriter(db, Config())
    writer.start()
    try:
        assert outcome(writer, spooled(tmp_path, 0)) == "stored"
    finally:
        writer.stop()
    assert query(db, "SELECT delivery_id, payload->>'$.n' FROM webhook_deliveries") == [("delivery-0", "0")]
    assert added_files(db) == 1
    assert len(list((home / "lake" / "main" / "webhook_deliveries").iterdir())) == 1
    # (the store's opening makes an empty "~/lake" here: analytics/store/connection.py, not the writer)
    assert not (work / "~" / "lake" / "main").exists()


def test_a_long_text_value_is_not_copied_into_the_catalogs_statistics(tmp_path: Path) -> None:
    """GitLab names the event in the payload (``object_kind``): a sender can make it as long as the
    body. DuckLake copies a file's min/max into the catalog, and reads them to plan every query of
    the table; DuckDB's own files keep at most 256 bytes of a text's (a prefix as the min, the
    prefix one higher as the max), and so does the receiver's: every filter still finds the row."""
    db = tmp_path / "store.ducklake"
    long_event = "merge_request " * 20_000  # 280,000 characters
    writer = DeliveryWriter(db, Config())
    writer.start()
    try:
        made = spooled(tmp_path, 0)
        made.provider, made.event = "gitlab", long_event
        assert outcome(writer, made) == "stored"
        assert outcome(writer, spooled(tmp_path, 1)) == "stored"
    finally:
        writer.stop()
    assert added_files(db) == 2
    with hold_store(db) as con:
        meta = f"__ducklake_metadata_{CATALOG}"
        longest = con.execute(
            "SELECT max(length(s.min_value)), max(length(s.max_value))"
            f" FROM {meta}.ducklake_file_column_stats AS s JOIN {meta}.ducklake_table AS t USING (table_id)"
            " WHERE t.table_name = 'webhook_deliveries'"
        ).fetchall()[0]
    assert longest == (256, 256)  # the event's and the payload's, cut
    which = "SELECT delivery_id FROM webhook_deliveries WHERE "
    assert query(db, which + "event = ?", [long_event]) == [("delivery-0",)]
    assert query(db, which + "event = 'push'") == [("delivery-1",)]
    assert query(db, which + "event > 'n'") == [("delivery-1",)]
    assert query(db, which + "event < 'n'") == [("delivery-0",)]


def test_a_filter_on_the_payload_finds_every_row(tmp_path: Path) -> None:
    """DuckLake keeps the table's min/max per column from its files' (ducklake_table_column_stats)
    and skips by them: a file without the payload's min/max left the table's those of the files
    after it alone, and ``WHERE payload = ?`` found neither the receiver's row nor a small
    delivery's INSERTed before it (DuckDB 1.5.5)."""
    db = tmp_path / "store.ducklake"
    texts = [json.dumps({"n": n, "pad": "x" * (300_000 if n == 1 else 10)}) for n in range(3)]
    writer = DeliveryWriter(db, Config())
    writer.start()
    try:
        for n, text in enumerate(texts):
            made = spooled(tmp_path, n)
            if n != 1:  # a small delivery: the INSERT of its JSON text
                made.payload_file, made.payload_json, made.body = None, text, text.encode()
            else:
                Path(str(made.payload_file)).write_text(text, encoding="utf-8")
            assert outcome(writer, made) == "stored"
    finally:
        writer.stop()
    assert added_files(db) == 1
    for n, text in enumerate(texts):
        for where in ("payload = ?::JSON", "payload = ?", "payload::VARCHAR = ?"):
            found = query(db, f"SELECT delivery_id FROM webhook_deliveries WHERE {where}", [text])
            assert found == [(f"delivery-{n}",)], (n, where)


@pytest.mark.parametrize("text", [
    "x" * 300, "é" * 200, "a" * 255 + "é" + "b", "a" * 255 + "\U0001F600" * 3, "\U0010FFFF" * 100,
    "a" * 250 + "\U0010FFFF" * 10, "a" * 250 + "\uD7FF" * 10, "short", "",
])
def test_the_bounds_of_a_long_text_hold_every_text_that_begins_with_it(text: str) -> None:
    from analytics.webhooks.delivery_file import _bounds

    data = text.encode("utf-8")
    low, high = _bounds(data, len(data))
    low.decode("utf-8"), high.decode("utf-8")  # both UTF-8: the catalog keeps them as text
    assert low <= data <= high
    if low == high:  # short, or nothing above its prefix (U+10FFFF only): the text itself
        assert low == data and (len(data) <= 256 or set(text) == {"\U0010FFFF"})
    else:  # cut: any longer text with the same first 256 bytes lies between too
        assert len(low) <= 256 and len(high) <= 256
        assert low <= data + b"zzz" <= high and low <= data + b"\xf4\x8f\xbf\xbf" <= high
