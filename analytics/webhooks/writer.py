"""The receiver's single writer: one thread applies queued deliveries, a batch per transaction.

DuckDB allows one writing process per file and our store takes an exclusive lock per write
session. Request handlers therefore never write: they queue a verified, parsed delivery and wait
for its future. The writer thread takes everything queued, opens ONE write session for the batch
(so 200 concurrent deliveries cost a few transactions, not 200), skips deliveries already stored,
upserts the rows, records each delivery in ``webhook_deliveries``, runs the providers'
``finalize`` steps, commits, and only then resolves the futures, so a 2xx means "durably stored".
The snapshot readers use is published once per committed batch: while one batch commits, new
deliveries accumulate for the next, which debounces publishing under load.
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from analytics.config import Config
from analytics.errors import StoreLockedError
from analytics.store.connection import WriteSession, open_writer

MAX_BATCH = 500
LOCK_WAIT_SECONDS = 60.0


@dataclass
class Delivery:
    provider: str
    delivery_id: str
    event: str
    body: bytes
    payload: dict[str, Any]
    rows: dict[str, list[dict[str, Any]]]
    finalize: Callable[[WriteSession, Config], None] | None
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
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            self._apply(batch)

    def _apply(self, batch: list[Delivery]) -> None:
        try:
            outcomes = self._write_locked(batch)
        except Exception as exc:  # noqa: BLE001 - isolate the bad delivery, keep the others
            if len(batch) > 1:
                for delivery in batch:
                    self._apply([delivery])
                return
            batch[0].future.set_exception(exc)
            return
        for delivery, outcome in zip(batch, outcomes, strict=True):
            delivery.future.set_result(outcome)

    def _write_locked(self, batch: list[Delivery]) -> list[str]:
        """Wait (bounded) while a CLI collection holds the store, instead of failing deliveries."""
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                with open_writer(self.db_path, source="webhook", target="receiver") as session:
                    outcomes = self._write(session, batch)
                self.batches += 1
                self.stored += outcomes.count("stored")
                return outcomes
            except StoreLockedError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

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
            if delivery.finalize is not None:
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
        session.upsert(table, [{c: row.get(c) for c in columns} for row in latest.values()], columns=columns)

    def _primary_key(self, session: WriteSession, table: str) -> list[str]:
        if table not in self._keys:
            found = session.con.execute(
                "SELECT constraint_column_names FROM duckdb_constraints()"
                " WHERE table_name = ? AND constraint_type = 'PRIMARY KEY'",
                [table],
            ).fetchall()
            self._keys[table] = list(found[0][0]) if found else []
        return self._keys[table]
