"""The receiver's writer: one thread commits queued deliveries in small batches, back to back.

Request handlers never write. A handler checks a delivery (limits, signature, JSON, rows: see
``server.py``), puts it on a queue and awaits its future. One writer thread holds one read-write
connection to the store (``hold_store``). The store is DuckLake, so collections, imports and other
receivers write at the same time: there is no lock, and the writer never waits for a collection to
finish. It loops:

* take the first queued delivery and whatever is queued behind it; during a burst also gather
  what arrives while deliveries keep coming (gaps under GATHER_IDLE_SECONDS, at most
  GATHER_MAX_SECONDS and MAX_BATCH deliveries, and no more once the batch is as large as the
  largest of the last RECENT_BATCHES); a lone delivery is written at once;
* in ONE transaction of three statements for a plain batch: insert one ``webhook_deliveries`` row
  per delivery not stored yet (one INSERT whose anti-join against the stored ids is the duplicate
  check), upsert their rows by each table's natural key (``analytics/store/keys.py``, one MERGE per
  table), run the providers' ``finalize`` steps (only for the tables they need), COMMIT;
* only after the COMMIT resolve the futures: a 2xx means "committed". A reader that starts after
  the 2xx sees the delivery (readers pin the newest snapshot when they open).

While one batch commits, the next one gathers, so under steady load a delivery waits for at most
the batch in progress and its own: a few tens of milliseconds each, and the arrival-to-commit time
of every delivery is kept (``stats()``, shown by ``GET /``).

Why so few statements: on DuckLake with a SQLite catalog every statement costs catalog queries
whatever its size (the first of a transaction ~200 of them, ~15 ms of CPU; each further table scan
~20), so a batch's cost is nearly all per statement, not per delivery. The rows go in as one list
per column (``unnest``), which DuckDB binds and plans ~30% faster than a VALUES list of one
parameter per value, and with no pandas frame whatever the batch size. When the INSERT stores fewer
deliveries than were new to the batch, some were stored before (a sender's redelivery, or another
receiver): the transaction is rolled back and run again with the ids read first, the old way, so
their rows are not applied twice; redeliveries are rare, so the common batch saves a statement.

A commit that meets another writer's commit (``is_conflict``: a collection committed meanwhile) is
run again at once with a short randomised backoff: the store moved on, nothing is wrong with the
batch. Any other failure splits the batch in halves until the failing delivery stands alone, so one
bad delivery never takes the others down:

* a delivery that can never be stored (a data error: a number out of range, a value the column
  cannot hold, an error from our own row code on its values) fails with :class:`Rejected`; the
  server answers 422, so the sender does not retry it forever, and nothing of it is stored (a
  redelivery is rejected the same way, not "duplicate");
* a store that is unavailable (I/O error, disk full, conflicts past CONFLICT_RETRIES, a broken
  connection) fails the batch with :class:`StoreUnavailable` (503: the sender retries later) and
  the connection is opened again before the next batch.

Each busy period (deliveries until the queue has been idle for IDLE_SECONDS, or RUN_SECONDS) is
recorded as one ``collection_runs`` row, so the Data health page shows the receiver.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import queue
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, overload

import duckdb

from analytics.config import Config
from analytics.errors import NUL_REFUSED, UserError
from analytics.store.connection import CATALOG, WriteSession, hold_store, is_conflict, unlink_unreferenced
from analytics.store.keys import key_of
from analytics.store.literals import MAX_INLINE_ITEMS
from analytics.store.location import StoreRef, resolve
from analytics.store.upsert import UnstorableKeyError, is_nul_in_key, merge, merge_values
from analytics.webhooks.delivery_file import KNOWN_TYPES, write_row_file

MAX_BATCH = 500
GATHER_IDLE_SECONDS = 0.01  # keep gathering while the next delivery comes within this...
GATHER_MAX_SECONDS = 0.05  # ...but start the batch this long after its first delivery at the latest
RECENT_BATCHES = 8  # ...or once it is as large as the largest of this many last batches
CONFLICT_RETRIES = 40  # a batch that meets other writers' commits runs again this often (~10 s)
IDLE_SECONDS = 1.0  # a busy period (one collection_runs row) ends after this long without deliveries...
RUN_SECONDS = 60.0  # ...or after this long
LATENCY_WINDOW = 2000  # arrival-to-commit times kept for stats()
# A batch is a handful of small statements; on DuckLake each costs ~10 ms of CPU reading the catalog
# whatever its size, and more DuckDB threads only add to that (measured: -40% CPU per statement
# with one). The event loop in the same process needs the other core.
WRITER_THREADS = 1

Rows = Sequence[dict[str, Any]]  # a list of row dicts, or a large delivery's TableRows
Finalize = Callable[[WriteSession, Config, Mapping[str, Rows]], None]
_DELIVERY_COLUMNS = ("provider", "delivery_id", "event", "received_at", "body_sha256", "payload",
                     "rows_written")
# One list per column; the anti-join is the duplicate check (the SELECT of the slow path finds which).
_INSERT_DELIVERIES = (
    f"INSERT INTO webhook_deliveries ({', '.join(_DELIVERY_COLUMNS)})"
    " SELECT * FROM (SELECT "
    + ", ".join(f"unnest(${i}) AS {c}" for i, c in enumerate(_DELIVERY_COLUMNS, 1))
    + ") AS v"
    " WHERE NOT EXISTS (SELECT 1 FROM webhook_deliveries AS d"
    " WHERE d.provider = v.provider AND d.delivery_id = v.delivery_id)"
)
_DELIVERY_TYPES = dict(zip(_DELIVERY_COLUMNS, ("VARCHAR", "VARCHAR", "VARCHAR", "TIMESTAMPTZ", "VARCHAR",
                                               "VARCHAR", "INTEGER"), strict=True))
# A payload bound inside a list for unnest() costs DuckDB about ten times its size while the list is
# converted (a 20 MB string: +205 MB); bound as a plain parameter it costs about its size. Large
# payloads therefore get a statement of their own; the many small ones of a batch still share one.
_INSERT_ONE_DELIVERY = (
    f"INSERT INTO webhook_deliveries ({', '.join(_DELIVERY_COLUMNS)})"
    " SELECT * FROM (SELECT "
    + ", ".join(f"${i}::{t} AS {c}" for i, (c, t) in enumerate(_DELIVERY_TYPES.items(), 1))
    + ") AS v"
    " WHERE NOT EXISTS (SELECT 1 FROM webhook_deliveries AS d"
    " WHERE d.provider = v.provider AND d.delivery_id = v.delivery_id)"
)
LARGE_PAYLOAD = 256 * 1024  # characters of payload JSON
# A table's rows past this many are merged in parts of at most this many (but of more than the
# MAX_INLINE_ITEMS that analytics/store/literals.py would write into the SQL as literals, far
# slower to parse at that size): one MERGE of a 30,000-commit push held its bound lists converted
# all at once (measured: peak -60 MiB with 3 parts). Batches of small deliveries stay one MERGE
# per table.
MERGE_PART_ROWS = 10_000
# DuckDB's allocator (jemalloc) keeps what a statement freed, up to 128 MiB, for the next one; for a
# batch with a large payload it flushes after each task instead (measured: peak -60 MiB for 24 MB).
_LEAN = "SET allocator_flush_threshold = '1MiB'; SET allocator_bulk_deallocation_flush_threshold = '1MiB'"
_UNLEAN = "RESET allocator_flush_threshold; RESET allocator_bulk_deallocation_flush_threshold"
# A spooled payload goes from its file to the store without a Python string: binding a 20 MB
# string costs DuckDB about six times its size (+163 MiB for 23.8 MiB), read_text about four.
# The file is memory-mapped and handed to DuckDB as an Arrow array of the JSON extension type,
# which DuckDB reads as JSON as it is: cast from VARCHAR (read_text), DuckDB parses the text again
# to check it (its yyjson document: +20 MiB at the INSERT's peak for 23.8 MiB). The receiver has
# parsed the text already (orjson, strict) before it spooled it, and the stored text is the same
# either way. Where the Arrow array cannot be made, read_text. The INSERT has no anti-join
# against the stored ids: with one the 24 MB row went through the join's hash table (+25 MiB,
# measured: 108 -> 83 MiB); ``_SPOOLED_STORED`` asks first, in the same transaction: the same check.
_SPOOLED_COLUMNS = ", ".join(f"{c}" if c == "payload" else f"${i}::{t} AS {c}"
                             for i, (c, t) in enumerate(_DELIVERY_TYPES.items(), 1))
_INSERT_SPOOLED_DELIVERY = (
    f"INSERT INTO webhook_deliveries ({', '.join(_DELIVERY_COLUMNS)}) SELECT {_SPOOLED_COLUMNS}"
    " FROM (SELECT content AS payload FROM read_text($6))"
)
# the same from a registered Arrow table of the payload (``{table}``): no $6, the path
_INSERT_MAPPED_DELIVERY = (
    f"INSERT INTO webhook_deliveries ({', '.join(_DELIVERY_COLUMNS)}) SELECT "
    + ", ".join("payload" if c == "payload" else f"${i if i < 6 else i - 1}::{t} AS {c}"
                for i, (c, t) in enumerate(_DELIVERY_TYPES.items(), 1))
    + " FROM {table}"
)
_SPOOLED_STORED = "SELECT count(*) FROM webhook_deliveries WHERE provider = $1 AND delivery_id = $2"
# Where DuckLake keeps webhook_deliveries' data files, relative to the store's data path (or not);
# no row where the table is partitioned.
_DELIVERIES_FOLDER = (
    f"SELECT s.path, s.path_is_relative, t.path, t.path_is_relative"
    f" FROM __ducklake_metadata_{CATALOG}.ducklake_table AS t"
    f" JOIN __ducklake_metadata_{CATALOG}.ducklake_schema AS s ON s.schema_id = t.schema_id"
    " WHERE t.table_name = 'webhook_deliveries' AND s.schema_name = 'main'"
    " AND t.end_snapshot IS NULL AND s.end_snapshot IS NULL"
    # a partitioned table takes no file without its partition values: DuckDB's INSERT writes them
    f" AND NOT EXISTS (SELECT 1 FROM __ducklake_metadata_{CATALOG}.ducklake_partition_info AS p"
    " WHERE p.table_id = t.table_id AND p.end_snapshot IS NULL)"
)
_ADD_FILE = (f"CALL ducklake_add_data_files('{CATALOG}', 'webhook_deliveries', $1, schema => 'main',"
             " hive_partitioning => false)")  # a data path with a "key=value" folder is not a partition
_INT_RANGE = {"TINYINT": 2**7, "SMALLINT": 2**15, "INTEGER": 2**31, "BIGINT": 2**63}
_UNAVAILABLE = (duckdb.OperationalError, duckdb.InternalError, duckdb.InterruptException, OSError,
                MemoryError, UserError)
_DATA = (duckdb.DataError, duckdb.IntegrityError, duckdb.InvalidInputException, ValueError, TypeError,
         UnicodeError, RecursionError, KeyError, IndexError, AttributeError)


class Rejected(Exception):
    """The delivery can never be stored as it is: answered 422, never retried by the receiver."""


class StoreUnavailable(Exception):
    """The store could not take the delivery now: answered 503, the sender should retry."""


class _StoredBefore(Exception):
    """Some deliveries of the batch were in the store already: run it again, reading the ids first."""


class _FileRefused(Exception):
    """DuckLake refused a payload data file (``_add_spooled``): run the batch again, INSERTing."""


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def failure_kind(exc: BaseException) -> str:
    """"conflict" (run again), "unavailable" (503, reopen), "data" (422 when alone), "other"."""
    if is_conflict(exc):
        return "conflict"
    if isinstance(exc, _DATA) or is_nul_in_key(exc):
        return "data"
    if isinstance(exc, _UNAVAILABLE):
        return "unavailable"
    return "other"


@dataclass
class Delivery:
    provider: str
    delivery_id: str
    event: str
    body: bytes
    payload: dict[str, Any]
    rows: Mapping[str, Rows]
    finalize: Finalize | None
    finalize_after: frozenset[str] | None = None  # provider's FINALIZE_AFTER: tables that need it
    payload_json: str | None = None  # the payload as JSON text (the body, when it was JSON)
    # A large payload's JSON text in a file (``spool_payload``) instead of ``payload_json``: the
    # writer copies it into the row's own data file (``_add_spooled``; where it cannot, DuckDB reads
    # it), and ``body`` is then empty, its hash in ``body_sha256``.
    payload_file: str | None = None
    body_sha256: str | None = None
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    arrived: float = field(default_factory=time.monotonic)  # when the request came in
    future: Future[str] = field(default_factory=Future)
    # the server's: settled in its event loop together with the rest of the batch (_wake)
    waiter: asyncio.Future[str] | None = None


@dataclass
class Column:
    type: str
    nullable: bool


class TableRows(Sequence[dict[str, Any]]):
    """A large delivery's rows of one table held as an Arrow table (``table_rows``), last row per
    natural key. A 30,000-commit push's rows as dicts hold about its body's size until the writer
    has stored them, and bound as lists for the MERGE DuckDB converts them to values one by one
    (+60 MiB for 10,000 rows); as Arrow they take a fifth of that, and the writer MERGEs from the
    registered table as it is. Iterating gives the row dicts back (a batch that mixes them with
    other deliveries' rows of the same table takes the lists' way)."""

    def __init__(self, table: Any, made: int) -> None:
        self.table = table
        self.made = made  # rows the provider made, before the last-per-key cut (rows_written)

    def __len__(self) -> int:
        return int(self.table.num_rows)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.table.to_pylist()
        return rows[index]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for batch in self.table.to_batches(max_chunksize=1000):
            yield from batch.to_pylist()


def made_rows(rows: Rows) -> int:
    """How many rows the provider made (a TableRows kept the last per key of them)."""
    return rows.made if isinstance(rows, TableRows) else len(rows)


def latest_rows(table: str, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The last row per natural key, as if the rows had been applied one by one."""
    key_cols = key_of(table)
    latest: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        latest[tuple(row.get(c) for c in key_cols)] = row
    return list(latest.values())


def row_columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Every column the rows give, in the order they first appear."""
    columns: dict[str, None] = {}
    for row in rows:
        for name in row:
            columns.setdefault(name, None)
    return list(columns)


def table_rows(table: str, rows: list[dict[str, Any]]) -> TableRows | None:
    """``rows`` as a TableRows, or None where Arrow would not hold exactly the values the lists'
    way binds: a column whose values (or list items) are not all of one Python type (an int and
    a bool, an int and a float), a dict or nested list, an integer past 64 bits, a string UTF-8
    cannot hold. The rows then stay dicts."""
    import pyarrow as pa

    latest = latest_rows(table, rows)
    arrays = {}
    for column in row_columns(latest):
        values = [row.get(column) for row in latest]
        kinds = {type(v) for v in values if v is not None}
        if len(kinds) > 1 or kinds & {dict, tuple}:
            return None
        if list in kinds:
            items = {type(i) for v in values if v is not None for i in v}
            if len(items) > 1 or items & {list, dict, tuple}:
                return None
        try:
            arrays[column] = pa.array(values)
        except (pa.ArrowException, OverflowError, ValueError, TypeError, UnicodeError):
            return None
    return TableRows(pa.table(arrays), len(rows))


def check_rows(rows: Mapping[str, Rows], columns: Mapping[str, Mapping[str, Column]]) -> None:
    """Refuse rows the store cannot hold before they reach a batch: an unknown table or column, no
    value for a NOT NULL column, an integer outside its column's range (a PR number >= 2**31).
    Raises Rejected. What this misses the writer still catches (a data error: 422)."""
    for table, table_rows in rows.items():
        known = columns.get(table)
        if known is None:
            raise Rejected(f"no table {table!r} in the store")
        for row in table_rows:
            for name, value in row.items():
                column = known.get(name)
                if column is None:
                    raise Rejected(f"no column {table}.{name} in the store")
                if value is None:
                    if not column.nullable:
                        raise Rejected(f"{table}.{name} is required and missing")
                    continue
                bound = _INT_RANGE.get(column.type)
                if bound is not None and isinstance(value, int | float) and not -bound <= value < bound:
                    raise Rejected(f"{table}.{name} = {value!r} is out of range for {column.type}")
                if not _shape_fits(value, column.type):
                    raise Rejected(f"{table}.{name} is not a {column.type}: {type(value).__name__}")


def _shape_fits(value: Any, column_type: str) -> bool:
    """Whether a JSON value has the shape of its column: a hostile payload's object or list where a
    branch name belongs would otherwise reach DuckDB's conversion, which fails for nested values with
    an internal error (a 503 and a retry) instead of a data error."""
    if column_type == "JSON":
        return True
    if column_type.endswith("[]"):
        return isinstance(value, list) and not any(isinstance(item, dict | list) for item in value)
    return not isinstance(value, dict | list)


class DeliveryWriter:
    def __init__(self, db: StoreRef, config: Config) -> None:
        self.db, self.config = db, config
        self._queue: queue.Queue[Delivery | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="webhook-writer", daemon=True)
        self._stack = contextlib.ExitStack()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._session: WriteSession | None = None
        # the folder a spooled payload's data file is written to (``_add_spooled``), looked up once
        # per connection: "" when it cannot be (a remote data path, a column this writer does not know,
        # or DuckLake refused such a file on this connection: ``_FileRefused``)
        self._payload_folder: str | None = None
        self._added: list[str] = []  # data files the transaction in progress registered
        self.columns: dict[str, dict[str, Column]] = {}
        self.on_failure: Callable[[str, str], None] = lambda key, message: None
        self.stored = 0
        self.batches = 0
        self.conflicts = 0
        self.largest_batch = 0
        self._last_batch = 0
        self._recent: deque[int] = deque(maxlen=RECENT_BATCHES)  # sizes of the last batches (_gather)
        self._latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._run_started: datetime | None = None
        self._run_since = 0.0
        self._run_stored = 0
        self._run_rows = 0

    # --- life cycle ---------------------------------------------------------------------------

    def open(self) -> None:
        """Open the store (migrated) and read its columns; raises UserError when it cannot."""
        if self._con is not None:
            return
        con = self._stack.enter_context(hold_store(self.db))
        try:
            con.execute(f"SET threads = {WRITER_THREADS}")
            found = con.execute(
                "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns"
                " WHERE table_catalog = ?", [CATALOG]
            ).fetchall()
        except duckdb.Error:
            self._close()
            raise
        columns: dict[str, dict[str, Column]] = {}
        for table, name, data_type, nullable in found:
            columns.setdefault(str(table), {})[str(name)] = Column(str(data_type).upper(), nullable == "YES")
        self.columns = columns
        self._con = con
        self._session = WriteSession(con=con, location=resolve(self.db), source="webhook", target="receiver")

    def _close(self) -> None:
        self._con, self._session, self._payload_folder = None, None, None
        with contextlib.suppress(Exception):
            self._stack.close()
        self._stack = contextlib.ExitStack()

    def start(self) -> None:
        self.open()
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish what is queued, then end the thread and close the store."""
        self._queue.put(None)
        self._thread.join(timeout)

    def submit(self, delivery: Delivery) -> Future[str]:
        self._queue.put(delivery)
        return delivery.future

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def stats(self) -> dict[str, Any]:
        """Batches so far and the arrival-to-commit time of the last LATENCY_WINDOW deliveries."""
        times = sorted(self._latencies)

        def pick(q: float) -> float | None:
            return round(times[min(len(times) - 1, int(q * len(times)))] * 1000, 1) if times else None

        return {
            "stored": self.stored, "batches": self.batches, "largest_batch": self.largest_batch,
            "conflicts_retried": self.conflicts,
            "commit_latency_ms": {"count": len(times), "p50": pick(0.5), "p99": pick(0.99),
                                  "max": round(times[-1] * 1000, 1) if times else None},
        }

    # --- the thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                try:
                    first = self._queue.get(timeout=IDLE_SECONDS if self._run_started else None)
                except queue.Empty:
                    self._end_run()
                    continue
                if first is None:
                    break
                batch, stopping = self._gather(first)
                if self._run_started is None:
                    self._run_started, self._run_since = datetime.now(UTC), time.monotonic()
                try:
                    self._apply(batch)
                finally:  # _apply discards them as it settles each delivery; this is for an error
                    for delivery in batch:
                        discard_payload_file(delivery)
                if stopping:
                    break
                if time.monotonic() - self._run_since > RUN_SECONDS:
                    self._end_run()
        finally:
            self._end_run()
            self._close()

    def _gather(self, first: Delivery) -> tuple[list[Delivery], bool]:
        """The first delivery and those queued behind it; during a burst (more than one queued now
        or in the last batch) also those arriving within GATHER_IDLE_SECONDS of each other, up to
        GATHER_MAX_SECONDS: fewer, larger batches. A lone delivery is written at once.

        The gathering also ends, without waiting out the idle gap, once the batch is as large as
        the largest of the last few: senders that wait for their answer before sending again (the
        usual case, and the bench's 50 connections) come back as many as were answered, and the
        idle gap after the last of them was ~10% of each cycle at that rate."""
        batch = [first]
        until = time.monotonic() + GATHER_MAX_SECONDS
        burst = self._last_batch > 1
        expected = max(self._recent, default=0)
        while len(batch) < MAX_BATCH:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                left = until - time.monotonic()
                if left <= 0 or not (burst or len(batch) > 1) or 1 < expected <= len(batch):
                    break
                try:
                    item = self._queue.get(timeout=min(GATHER_IDLE_SECONDS, left))
                except queue.Empty:
                    break
            if item is None:
                self._gathered(len(batch))
                return batch, True
            batch.append(item)
        self._gathered(len(batch))
        return batch, False

    def _gathered(self, size: int) -> None:
        self._last_batch = size
        self._recent.append(size)

    def _apply(self, batch: list[Delivery]) -> None:
        try:
            outcomes = self._commit(batch)
        except Exception as exc:  # noqa: BLE001 - every failure ends in the deliveries' futures
            kind = failure_kind(exc)
            if kind in ("data", "other") and len(batch) > 1:
                half = len(batch) // 2
                self._apply(batch[:half])
                self._apply(batch[half:])
                return
            error: Exception
            if kind == "data":
                reason = (f"a key value contains {NUL_REFUSED}"
                          if is_nul_in_key(exc) and not isinstance(exc, UnstorableKeyError)
                          else first_line(exc))
                error = Rejected(f"cannot be stored: {reason}")
                self.on_failure(f"rejected:{type(exc).__name__}", f"{batch[0].provider} delivery "
                                f"{batch[0].delivery_id} rejected (422): {first_line(exc)}")
            else:
                error = StoreUnavailable(f"not stored: {first_line(exc)}")
                self.on_failure("store", f"{len(batch)} deliveries not stored (503): {first_line(exc)}")
                if kind != "conflict":
                    self._close()  # opened again for the next batch
            for delivery in batch:
                discard_payload_file(delivery)
                delivery.future.set_exception(error)
            _wake(batch)
            return
        committed = time.monotonic()
        self.batches += 1
        self.largest_batch = max(self.largest_batch, len(batch))
        stored = outcomes.count("stored")
        self.stored += stored
        self._run_stored += stored
        for delivery, outcome in zip(batch, outcomes, strict=True):
            self._latencies.append(committed - delivery.arrived)
            discard_payload_file(delivery)  # before the answer: a sender may stop the receiver then
            delivery.future.set_result(outcome)
        _wake(batch)

    def _commit(self, batch: list[Delivery]) -> list[str]:
        """One transaction for the batch, run again when its commit meets another writer's. A batch
        with a spooled (large) payload has DuckDB hand its memory back after each statement
        (``_LEAN``), not keep it for the next: the payload's INSERT, the MERGE of its thousands of
        rows and the re-derivations would otherwise each add theirs to the last one's."""
        lean = any(d.payload_file is not None for d in batch)
        try:
            if lean:
                self.open()
                assert self._con is not None
                self._con.execute(_LEAN)
            return self._commit_batch(batch)
        finally:
            if lean and self._con is not None:
                with contextlib.suppress(duckdb.Error):
                    self._con.execute(_UNLEAN)

    def _commit_batch(self, batch: list[Delivery]) -> list[str]:
        check_first = False
        conflicts = 0
        while True:  # again after a conflict (CONFLICT_RETRIES times), _StoredBefore, _FileRefused (once)
            self.open()
            con, session = self._con, self._session
            assert con is not None and session is not None
            self._added = []
            try:
                con.execute("BEGIN TRANSACTION")
                rows_before = session.rows_written
                outcomes = self._write(session, batch, check_first)
                con.execute("COMMIT")
                self._added = []  # the store's now
                self._run_rows += session.rows_written - rows_before
                return outcomes
            except _StoredBefore:
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                self._remove_added(con)
                session.rows_written = rows_before
                check_first = True  # at most once: with the ids read first the counts agree
                continue
            except _FileRefused:
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                self._remove_added(con)
                session.rows_written = rows_before
                continue  # at most once per connection: its _payload_folder is "" now
            except Exception as exc:
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                self._remove_added(con)
                if not is_conflict(exc) or conflicts == CONFLICT_RETRIES:
                    raise
                self.conflicts += 1
                time.sleep(min(0.25, 0.003 * (1.4 ** conflicts)) * (0.5 + random.random()))
                conflicts += 1

    def _write(self, session: WriteSession, batch: list[Delivery], check_first: bool = False) -> list[str]:
        """The batch's statements: the deliveries' INSERT, one MERGE per table, the finalize steps.
        Raises _StoredBefore (unless ``check_first``) when a delivery new to the batch was stored."""
        con = session.con
        stored: set[tuple[str, str]] = set()
        if check_first:
            stored = {
                (str(p), str(d))
                for p, d in con.execute(
                    "SELECT provider, delivery_id FROM webhook_deliveries"
                    " WHERE delivery_id IN (SELECT unnest(?))",
                    [[d.delivery_id for d in batch]],
                ).fetchall()
            }
        outcomes: list[str] = []
        tables: dict[str, list[Rows]] = {}  # each delivery's rows of a table, in batch order
        deliveries: list[tuple[Any, ...]] = []
        spooled: list[tuple[Any, ...]] = []
        finalizers: dict[str, Finalize] = {}
        for delivery in batch:
            key = (delivery.provider, delivery.delivery_id)
            if key in stored:
                outcomes.append("duplicate")
                continue
            stored.add(key)
            outcomes.append("stored")
            count = 0
            for table, rows in delivery.rows.items():
                if rows:
                    tables.setdefault(table, []).append(rows)
                    count += made_rows(rows)
            head = (delivery.provider, delivery.delivery_id, delivery.event, delivery.received_at,
                    delivery.body_sha256 or hashlib.sha256(delivery.body).hexdigest())
            if delivery.payload_file is not None:  # the payload's text: its file's path here
                spooled.append((*head, delivery.payload_file, count))
            else:
                text = delivery.payload_json if delivery.payload_json is not None else _json(delivery.payload)
                deliveries.append((*head, text, count))
            after = delivery.finalize_after
            if delivery.finalize is not None and (after is None or any(delivery.rows.get(t) for t in after)):
                finalizers[f"{delivery.finalize.__module__}.{delivery.finalize.__qualname__}"] = (
                    delivery.finalize
                )
        if deliveries or spooled:
            inserted = 0
            small = [d for d in deliveries if len(d[5]) < LARGE_PAYLOAD]
            if small:
                columns = [list(column) for column in zip(*small, strict=True)]
                inserted += _count(con.execute(_INSERT_DELIVERIES, columns).fetchall())
            large = [d for d in deliveries if len(d[5]) >= LARGE_PAYLOAD]
            if large:
                with _not_inlined(con):
                    for row in large:
                        inserted += _count(con.execute(_INSERT_ONE_DELIVERY, list(row)).fetchall())
            for row in spooled:  # inserted last, below; stored before: the counts disagree
                inserted += 1 - min(1, _count(con.execute(_SPOOLED_STORED, list(row[:2])).fetchall()))
            if not check_first and inserted != len(deliveries) + len(spooled):
                raise _StoredBefore
        written: dict[str, Rows] = {}
        for table, parts in tables.items():
            written[table] = self._upsert(session, table, parts)
        for finalize in finalizers.values():
            finalize(session, self.config, written)
        if spooled:
            # A spooled payload's INSERT comes last: DuckDB keeps what it took (the mapped file, its
            # allocator's memory) until the COMMIT, and the MERGEs and re-derivations would have
            # come on top of it (measured for 24 MB: +9 MiB on top; before them, nothing does).
            for row in spooled:
                if not self._add_spooled(con, row):
                    with _not_inlined(con):
                        _insert_spooled(con, row)
        return outcomes

    def _add_spooled(self, con: duckdb.DuckDBPyConnection, row: tuple[Any, ...]) -> bool:
        """Store a spooled payload's delivery row as a data file this writer writes itself
        (``delivery_file``: the payload copied from its file, never in memory) and registers in
        the transaction with ``ducklake_add_data_files``; DuckDB's own INSERT held the value about
        three times (+146 MiB for a 23.8 MiB payload, measured). False, nothing written, where the
        store's data path is not a local folder or the table's columns are not the ones this writer
        knows: the caller INSERTs then. The file is removed again when the transaction is not
        committed (``_remove_added``).

        The columns are the ones the table had when the writer opened the store; another process
        may have changed the table since (a newer version's migration adds a column), and DuckLake
        then refuses the file (a column of the table missing from it) and the transaction is
        aborted. Raises _FileRefused then: the batch runs again, the INSERT way, which names its
        columns, as it does for the rest of this connection. A refusal is never the delivery's
        fault: answered 422 it would never be sent again."""
        folder = self._deliveries_folder(con)
        if not folder:
            return False
        path = os.path.join(folder, f"ducklake-{uuid.uuid4()}.parquet")
        columns = [(name, self.columns["webhook_deliveries"][name].type) for name in _DELIVERY_COLUMNS]
        self._added.append(path)
        write_row_file(path, columns, row, _DELIVERY_COLUMNS.index("payload"), str(row[5]))
        try:
            con.execute(_ADD_FILE, [path]).fetchall()
        except duckdb.Error as exc:
            if is_conflict(exc):
                raise
            self._payload_folder = ""
            raise _FileRefused(first_line(exc)) from exc
        return True

    def _deliveries_folder(self, con: duckdb.DuckDBPyConnection) -> str:
        """The folder of webhook_deliveries' data files (made if missing), "" where this writer
        must not write one: a remote data path, a column of a type or a name it does not know."""
        if self._payload_folder is not None:
            return self._payload_folder
        self._payload_folder = ""
        session = self._session
        columns = self.columns.get("webhook_deliveries", {})
        if session is None or "://" in session.location.data_path or set(columns) != set(_DELIVERY_COLUMNS) \
                or any(column.type not in KNOWN_TYPES for column in columns.values()) \
                or columns["payload"].type != "JSON":
            return ""
        try:
            found = con.execute(_DELIVERIES_FOLDER).fetchall()
            if not con.execute("SELECT count(*) FROM duckdb_functions()"
                               " WHERE function_name = 'ducklake_add_data_files'").fetchall()[0][0]:
                return ""  # a DuckLake without it: a failed CALL would abort the batch's transaction
        except duckdb.Error:
            return ""
        if len(found) != 1:
            return ""
        schema_path, schema_relative, table_path, table_relative = found[0]
        folder = str(table_path)
        if table_relative:
            folder = os.path.join(str(schema_path), folder)
            if schema_relative:
                folder = os.path.join(session.location.data_path, folder)
        # DuckDB reads a leading "~" as the home folder (a data path from an environment file, which
        # no shell expanded); to Python it is a folder of that name in the working folder
        folder = os.path.expanduser(folder)
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError:
            return ""
        self._payload_folder = folder
        return folder

    def _remove_added(self, con: duckdb.DuckDBPyConnection) -> None:
        """After a ROLLBACK: delete the data files this transaction wrote that no snapshot
        references (a failed COMMIT committed nothing; when the catalog cannot be read, leave them:
        ``maintain`` deletes orphaned files after an hour)."""
        added, self._added = self._added, []
        unlink_unreferenced(con, added)

    def _upsert(self, session: WriteSession, table: str, parts: list[Rows]) -> Rows:
        """Last row wins per natural key, as if the deliveries had been applied one by one; one
        MERGE over one list per column, whatever the number of rows. A table whose rows are one
        delivery's TableRows is merged from its Arrow table. Returns the rows, for finalize."""
        if len(parts) == 1 and isinstance(parts[0], TableRows):
            self._upsert_table(session, table, parts[0])
            return parts[0]
        rows = [row for part in parts for row in part]
        if not rows:
            return rows
        keyed = latest_rows(table, rows)
        columns = row_columns(keyed)
        source = ", ".join(f'unnest(${i}) AS "{c}"' for i, c in enumerate(columns, 1))
        # Rows of different keys: merged in parts or at once, the table ends the same.
        parts_n = max(1, min(-(-len(keyed) // MERGE_PART_ROWS), len(keyed) // (MAX_INLINE_ITEMS + 1)))
        step = -(-len(keyed) // parts_n)
        for start in range(0, len(keyed), step):
            part = keyed[start:start + step]
            merge(session.con, table, f"SELECT {source}", columns,
                  [[row.get(c) for row in part] for c in columns])
        session.rows_written += len(keyed)
        return rows

    def _upsert_table(self, session: WriteSession, table: str, rows: TableRows) -> None:
        """MERGE from the Arrow table (registered on the connection for the statement), in parts
        of MERGE_PART_ROWS."""
        columns = list(rows.table.column_names)
        # Rows of different keys (last row per key already): merged in parts or at once, the table
        # ends the same. In parts of MERGE_PART_ROWS DuckDB's join and Parquet writer hold a part's
        # rows, not all of them (measured for 30,000 commits: +28 MiB over what was held at once,
        # +23 in parts of 10,000; in the subprocess bench 2.3x -> 2.1x of the body).
        for start in range(0, len(rows), MERGE_PART_ROWS):
            part = TableRows(rows.table.slice(start, MERGE_PART_ROWS), 0)  # a view: no copy
            with registered(session.con, part) as name:
                merge(session.con, table, f"SELECT {', '.join(_quoted(c) for c in columns)} FROM {name}",
                      columns)
        session.rows_written += len(rows)

    def _end_run(self) -> None:
        """One ``collection_runs`` row for the busy period that just ended (best effort)."""
        if self._run_started is None:
            return
        started, stored, rows = self._run_started, self._run_stored, self._run_rows
        self._run_started, self._run_stored, self._run_rows = None, 0, 0
        if self._con is None:
            return
        con = self._con
        for attempt in range(CONFLICT_RETRIES + 1):
            try:
                con.execute("BEGIN TRANSACTION")
                merge_values(con, "collection_runs",
                             {"id": uuid.uuid4().hex, "source": "webhook", "target": "receiver",
                              "started_at": started, "status": "ok", "rows_written": rows,
                              "message": f"webhook receiver: {stored} deliveries stored"},
                             expressions={"finished_at": "now()"})
                con.execute("COMMIT")
                return
            except duckdb.Error as exc:
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                if not is_conflict(exc) or attempt == CONFLICT_RETRIES:
                    return  # the run log is best effort; the deliveries are stored
                time.sleep(0.01 * (0.5 + random.random()))


@contextlib.contextmanager
def _not_inlined(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Large payloads are written to a data file, not inlined into the catalog: DuckLake copies an
    inlined row into SQLite at COMMIT, which cost a 20 MB payload another +300 MB; a Parquet file
    costs about 4x."""
    con.execute("SET ducklake_default_data_inlining_row_limit = 0")
    try:
        yield
    finally:
        con.execute("RESET ducklake_default_data_inlining_row_limit")


def _insert_spooled(con: duckdb.DuckDBPyConnection, row: tuple[Any, ...]) -> int:
    """INSERT a delivery whose payload is in a file (``row[5]``, its path): from the memory-mapped
    file as an Arrow JSON array, or with read_text where that cannot be made."""
    try:
        import pyarrow as pa

        mapped = pa.memory_map(str(row[5]))
    except (ImportError, OSError):
        return _count(con.execute(_INSERT_SPOOLED_DELIVERY, list(row)).fetchall())
    try:
        try:
            data = mapped.read_buffer()
            offsets = pa.array([0, data.size], pa.int64()).buffers()[1]
            text = pa.Array.from_buffers(pa.large_utf8(), 1, [None, offsets, data])
            payload = pa.table({"payload": pa.ExtensionArray.from_storage(pa.json_(pa.large_utf8()), text)})
        except (AttributeError, pa.ArrowException, OSError):  # a pyarrow without the JSON type
            return _count(con.execute(_INSERT_SPOOLED_DELIVERY, list(row)).fetchall())
        name = f"webhook_payload_{uuid.uuid4().hex}"
        con.register(name, payload)
        try:
            sql = _INSERT_MAPPED_DELIVERY.format(table=name)
            return _count(con.execute(sql, [*row[:5], row[6]]).fetchall())
        finally:
            with contextlib.suppress(duckdb.Error):
                con.unregister(name)
            del payload, text, data
    finally:
        mapped.close()


@contextlib.contextmanager
def registered(con: duckdb.DuckDBPyConnection, rows: TableRows) -> Iterator[str]:
    """The rows' Arrow table as a view of ``con`` for the statements in the block."""
    name = f"webhook_rows_{uuid.uuid4().hex}"
    con.register(name, rows.table)
    try:
        yield name
    finally:
        with contextlib.suppress(duckdb.Error):
            con.unregister(name)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _wake(batch: list[Delivery]) -> None:
    """Settle the server's waiters of a batch with one call into their event loop, not one per
    delivery: each ``call_soon_threadsafe`` (what ``asyncio.wrap_future`` does for every future)
    writes to the loop's wake-up pipe and costs the loop ~30 us of CPU to wake and read it."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Delivery]] = {}
    for delivery in batch:
        if delivery.waiter is not None:
            by_loop.setdefault(delivery.waiter.get_loop(), []).append(delivery)
    for loop, deliveries in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop is closed: the server has stopped
            loop.call_soon_threadsafe(_settle, deliveries)


def _settle(deliveries: list[Delivery]) -> None:
    """In the event loop: each waiter gets its delivery's outcome or error."""
    for delivery in deliveries:
        waiter = delivery.waiter
        if waiter is None or waiter.done():
            continue
        error = delivery.future.exception()
        if error is not None:
            waiter.set_exception(error)
        else:
            waiter.set_result(delivery.future.result())


def discard_payload_file(delivery: Delivery) -> None:
    """Remove a delivery's spooled payload once its batch is settled (stored or refused)."""
    path, delivery.payload_file = delivery.payload_file, None
    if path is not None:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _count(result: list[tuple[Any, ...]]) -> int:
    """The row count an INSERT answers with (none when it inserted nothing, on some versions)."""
    return int(result[0][0]) if result and result[0][0] is not None else 0


def _json(payload: Any) -> str:
    import json

    return json.dumps(payload, ensure_ascii=False)
