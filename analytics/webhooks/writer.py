"""The receiver's single writer: one thread applies queued deliveries, one transaction per batch.

DuckDB allows one writing process per file, and our store's writers take an exclusive lock file.
Request handlers therefore never write: they queue a verified, parsed delivery and wait for its
future. The writer thread works in busy periods. At the first queued delivery it takes the store's
writer lock and opens the database; then, repeatedly, it takes everything queued (a batch),
and in ONE transaction skips deliveries already stored, upserts their rows, records each in
``webhook_deliveries``, runs the providers' ``finalize`` steps and commits; only after the
COMMIT (DuckDB has synced its write-ahead log) are the futures resolved, so a 2xx means "durably
stored". When the queue has been idle for IDLE_SECONDS, or HOLD_SECONDS have passed, it closes the
database (checkpoint), releases the lock and publishes the read snapshot once: publishing is
debounced, so 200 concurrent deliveries cost a few transactions and one or two snapshot copies
instead of 200 of each. Readers see new deliveries within about HOLD_SECONDS.
A CLI collection that holds the lock makes the writer wait (up to LOCK_WAIT_SECONDS) instead of
failing deliveries; a collection started while the receiver is busy fails fast as any second
writer does, and can simply be re-run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import queue
import random
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from analytics.config import Config
from analytics.store.connection import WriteSession, is_conflict
from analytics.store.keys import key_of
from analytics.store.location import resolve
from analytics.store.upsert import merge_rows, merge_values

MAX_BATCH = 500
SMALL_UPSERT = 50
CONFLICT_RETRIES = 30  # a batch that meets other writers' commits runs again this often
IDLE_SECONDS = 0.2        # a busy period ends after this long without deliveries...
HOLD_SECONDS = 2.0        # ...or after this long, so readers see new data within ~2 s


@dataclass
class Delivery:
    provider: str
    delivery_id: str
    event: str
    body: bytes
    payload: dict[str, Any]
    rows: dict[str, list[dict[str, Any]]]
    finalize: Callable[[WriteSession, Config], None] | None
    finalize_after: frozenset[str] | None = None  # provider's FINALIZE_AFTER: tables that need it
    future: Future[str] = field(default_factory=Future)


class DeliveryWriter:
    def __init__(self, db_path: Path, config: Config) -> None:
        self.db_path, self.config = db_path, config
        self._queue: queue.Queue[Delivery | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="webhook-writer", daemon=True)
        self._keys: dict[str, list[str]] = {}
        self.stored = 0
        self.batches = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish what is queued, then end the thread."""
        self._queue.put(None)
        self._thread.join(timeout)

    def submit(self, delivery: Delivery) -> Future[str]:
        self._queue.put(delivery)
        return delivery.future

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def _run(self) -> None:
        """Busy periods: hold the store from the first queued delivery until the queue has been
        idle for IDLE_SECONDS (or HOLD_SECONDS passed), committing one transaction per batch,
        then close (checkpoint), release the lock and publish the snapshot once."""
        while True:
            first = self._queue.get()
            if first is None:
                return
            stopping = self._busy_period(first)
            if stopping:
                return

    def _next_batch(self, first: Delivery | None, timeout: float) -> tuple[list[Delivery], bool]:
        batch: list[Delivery] = [] if first is None else [first]
        stopping = False
        if not batch:
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                return [], False
            if item is None:
                return [], True
            batch.append(item)
        while len(batch) < MAX_BATCH:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                stopping = True
                break
            batch.append(item)
        return batch, stopping

    def _busy_period(self, first: Delivery) -> bool:
        from analytics.store.connection import hold_store

        return self._drain(hold_store(self.db_path), first)

    def _drain(self, hold: AbstractContextManager[Any], first: Delivery) -> bool:
        """Write batches under one hold of the store until idle, stopped or HOLD_SECONDS passed."""
        stopping = False
        try:
            with hold as con:
                session = WriteSession(con=con, location=resolve(self.db_path), source="webhook",
                                       target="receiver")
                held_until = time.monotonic() + HOLD_SECONDS
                started, stored_before = datetime.now(UTC), self.stored
                pending: Delivery | None = first
                while True:
                    batch, stopping = self._next_batch(pending, IDLE_SECONDS)
                    pending = None
                    if batch:
                        self._apply(session, batch)
                    if stopping or not batch or time.monotonic() > held_until:
                        break
                self._record_run(session, started, self.stored - stored_before)
        except Exception as exc:  # noqa: BLE001 - the store could not be opened: fail what is waiting
            if not first.future.done():
                first.future.set_exception(exc)
        return stopping

    @staticmethod
    def _record_run(session: WriteSession, started: datetime, stored: int) -> None:
        """One ``collection_runs`` row per busy period, so the Data health page shows the receiver."""
        message = f"webhook receiver: {stored} deliveries stored"
        con = session.con
        con.execute("BEGIN TRANSACTION")
        try:
            merge_values(con, "collection_runs",
                         {"id": uuid.uuid4().hex, "source": "webhook", "target": "receiver", "started_at": started,
                          "status": "ok", "rows_written": session.rows_written, "message": message},
                         expressions={"finished_at": "now()"})
            con.execute("COMMIT")
        except duckdb.Error:
            con.execute("ROLLBACK")  # the run log is best effort; the deliveries are stored
        session.rows_written = 0

    def _apply(self, session: WriteSession, batch: list[Delivery]) -> None:
        """One transaction for the batch. A commit that meets another writer's runs again (the
        store moved on; nothing is wrong with the batch); any other failure splits the batch and
        stores each delivery alone, so one bad delivery cannot take the others down with it."""
        con = session.con
        failure: Exception | None = None
        outcomes: list[str] = []
        for attempt in range(CONFLICT_RETRIES + 1):
            try:
                con.execute("BEGIN TRANSACTION")
                outcomes = self._write(session, batch)
                con.execute("COMMIT")
                failure = None
                break
            except Exception as exc:  # noqa: BLE001
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                failure = exc
                if not is_conflict(exc):
                    break
                time.sleep(min(0.5, 0.01 * (1.5 ** attempt)) * (0.5 + random.random()))
        if failure is not None:
            if len(batch) > 1 and not is_conflict(failure):
                for delivery in batch:
                    self._apply(session, [delivery])
                return
            for delivery in batch:
                delivery.future.set_exception(failure)
            return
        self.batches += 1
        self.stored += outcomes.count("stored")
        for delivery, outcome in zip(batch, outcomes, strict=True):
            delivery.future.set_result(outcome)

    def _write(self, session: WriteSession, batch: list[Delivery]) -> list[str]:
        stored = {
            (p, d)
            for p, d in session.con.execute(
                "SELECT provider, delivery_id FROM webhook_deliveries WHERE list_contains(?, delivery_id)",
                [[d.delivery_id for d in batch]],
            ).fetchall()
        }
        outcomes: list[str] = []
        tables: dict[str, list[dict[str, Any]]] = {}
        deliveries: list[dict[str, Any]] = []
        finalizers: dict[str, Callable[[WriteSession, Config], None]] = {}
        now = datetime.now(UTC)
        for delivery in batch:
            key = (delivery.provider, delivery.delivery_id)
            if key in stored:
                outcomes.append("duplicate")
                continue
            stored.add(key)
            outcomes.append("stored")
            count = 0
            for table, rows in delivery.rows.items():
                tables.setdefault(table, []).extend(rows)
                count += len(rows)
            deliveries.append({
                "provider": delivery.provider, "delivery_id": delivery.delivery_id,
                "event": delivery.event, "received_at": now,
                "body_sha256": hashlib.sha256(delivery.body).hexdigest(),
                "payload": json.dumps(delivery.payload), "rows_written": count,
            })
            after = delivery.finalize_after
            if delivery.finalize is not None and (after is None or any(delivery.rows.get(t) for t in after)):
                finalizers[f"{delivery.finalize.__module__}.{delivery.finalize.__qualname__}"] = (
                    delivery.finalize
                )
        for table, rows in tables.items():
            self._upsert(session, table, rows)
        self._upsert(session, "webhook_deliveries", deliveries)
        for finalize in finalizers.values():
            finalize(session, self.config)
        return outcomes

    def _upsert(self, session: WriteSession, table: str, rows: list[dict[str, Any]]) -> None:
        """Last row wins per primary key, as if the deliveries had been applied one by one."""
        if not rows:
            return
        key_cols = self._primary_key(session, table)
        latest: dict[tuple[Any, ...], dict[str, Any]] = {}
        for row in rows:
            latest[tuple(row.get(c) for c in key_cols) if key_cols else (id(row),)] = row
        columns: list[str] = []
        for row in latest.values():
            columns.extend(c for c in row if c not in columns)
        if len(latest) > SMALL_UPSERT:
            frame_rows = [{c: row.get(c) for c in columns} for row in latest.values()]
            session.upsert(table, frame_rows, columns=columns)
            return
        # a handful of rows: bound parameters are ~10x cheaper than registering a DataFrame
        merge_rows(session.con, table, columns, [[row.get(c) for c in columns] for row in latest.values()])
        session.rows_written += len(latest)

    @staticmethod
    def _primary_key(session: WriteSession, table: str) -> list[str]:
        return list(key_of(table))
