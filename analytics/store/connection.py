"""Opening the store.

DuckDB allows one read-write process per file, and a read-write process excludes readers in
other processes. So:

* writers take an advisory lock file (``<db>.lock``) first, which names the holding process, then
  run the whole collection in ONE transaction; on commit they publish a copy of the database as
  ``<db>.snapshot`` with an atomic rename;
* readers (CLI read commands, dashboard) open the snapshot read-only and never touch the main file
  while a snapshot exists, so a running collection never blocks them and they never see a
  half-written run.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import sys
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import duckdb

from analytics.errors import StoreLockedError, UserError
from analytics.store.migrations import migrate

PAUSE_ENV = "GITOPS_DORA_PAUSE_BEFORE_COMMIT"  # fault injection for kill/concurrency tests
_PID_IN_DUCKDB_ERROR = re.compile(r"held in (.+?) \(PID (\d+)\)")


def snapshot_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".snapshot")


def lock_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".lock")


def _process_name(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        return raw.replace(b"\0", b" ").decode(errors="replace").strip() or "?"
    except OSError:
        return "?"


LOCK_WAIT_ENV = "GITOPS_DORA_LOCK_WAIT"  # seconds a writer waits for the lock (default 0: fail fast)


def lock_wait_seconds() -> float:
    """How long a writer waits for another writer to finish, from $GITOPS_DORA_LOCK_WAIT."""
    text = os.environ.get(LOCK_WAIT_ENV, "").strip()
    if not text:
        return 0.0
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not (0.0 <= seconds < float("inf")):
        raise UserError(f"${LOCK_WAIT_ENV}={text!r}: give a number of seconds (0 = fail at once)")
    return seconds


def _lock_holder(handle: IO[str]) -> str:
    handle.seek(0)
    return handle.read().strip() or "unknown process"


@contextmanager
def _writer_lock(db_path: Path, wait: float | None = None) -> Iterator[None]:
    """The writer lock; ``wait`` seconds for another writer to finish (None: from the environment)."""
    path = lock_path(db_path)
    wait = lock_wait_seconds() if wait is None else wait
    handle: IO[str] = open(path, "a+")  # noqa: SIM115 - held for the whole run
    try:
        deadline = time.monotonic() + wait
        announced = False
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _lock_holder(handle)
                if time.monotonic() >= deadline:
                    waited = f" after waiting {wait:g}s" if wait else ""
                    raise StoreLockedError(
                        f"database {db_path} is being written by another process ({holder}){waited}; "
                        f"wait for it to finish and run again (or set ${LOCK_WAIT_ENV} to wait)"
                    ) from None
                if not announced:
                    print(f"database {db_path} is being written by another process ({holder}): "
                          f"waiting up to {wait:g}s", file=sys.stderr, flush=True)
                    announced = True
                time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        handle.seek(0)
        handle.truncate()
        handle.write(f"PID {os.getpid()}: {_process_name(os.getpid())}")
        handle.flush()
        yield
    finally:
        handle.close()  # closing releases the flock


def _connect(db_path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(str(db_path), read_only=read_only)
    except duckdb.IOException as exc:
        m = _PID_IN_DUCKDB_ERROR.search(str(exc))
        if m:
            pid = int(m.group(2))
            raise StoreLockedError(
                f"database {db_path} is locked by process PID {pid} ({_process_name(pid)})"
            ) from None
        raise UserError(f"cannot open database {db_path}: {str(exc).splitlines()[0]}") from None
    except duckdb.Error as exc:
        raise UserError(f"cannot open database {db_path}: {str(exc).splitlines()[0]}") from None


def _to_frame(rows: Iterable[Mapping[str, Any]], columns: Sequence[str] | None) -> Any:
    import pandas as pd

    frame = pd.DataFrame.from_records(list(rows), columns=list(columns) if columns else None)
    return frame


@dataclass
class WriteSession:
    """A single-transaction write session. Everything is committed together or not at all."""

    con: duckdb.DuckDBPyConnection
    db_path: Path
    source: str
    target: str
    rows_written: int = 0
    messages: list[str] = field(default_factory=list)

    def upsert(
        self,
        table: str,
        rows: Iterable[Mapping[str, Any]] | Any,
        columns: Sequence[str] | None = None,
    ) -> int:
        """Insert-or-replace rows by the table's primary key; rows are dicts or a DataFrame."""
        import pandas as pd

        frame = rows if isinstance(rows, pd.DataFrame) else _to_frame(rows, columns)
        if frame.empty:
            return 0
        cols = list(columns) if columns else list(frame.columns)
        name = f"_upsert_{uuid.uuid4().hex[:8]}"
        self.con.register(name, frame)
        try:
            col_sql = ", ".join(f'"{c}"' for c in cols)
            self.con.execute(f'INSERT OR REPLACE INTO "{table}" ({col_sql}) SELECT {col_sql} FROM {name}')
        finally:
            self.con.unregister(name)
        self.rows_written += len(frame)
        return len(frame)

    def set_state(self, source: str, key: str, value: str) -> None:
        self.con.execute(
            "INSERT OR REPLACE INTO collector_state VALUES (?, ?, ?, now())", [source, key, value]
        )

    def get_state(self, source: str, key: str) -> str | None:
        # fetchall, not fetchone: a half-read result blocks the next statement on DuckDB 2.
        rows = self.con.execute(
            "SELECT value FROM collector_state WHERE source = ? AND key = ?", [source, key]
        ).fetchall()
        return rows[0][0] if rows else None

    def warn(self, kind: str, detail: str, count: int = 1) -> None:
        """Record a data-quality warning (shown on the Data health page)."""
        self.con.execute(
            "INSERT OR REPLACE INTO data_warnings VALUES (?, ?, ?, ?, ?, now())",
            [self.source, self.target, kind, detail, count],
        )


@contextmanager
def hold_store(db_path: Path, *, lock_wait: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """Hold the database for writing: the writer lock, one migrated read-write connection, and on a
    normal release the snapshot published for readers. Transactions are the caller's business, so
    a long-lived writer (the webhook receiver) can commit many batches under one hold.
    ``lock_wait``: seconds to wait for another writer (None: $GITOPS_DORA_LOCK_WAIT, default 0)."""
    db_path = Path(db_path)
    if db_path.parent and not db_path.parent.exists():
        db_path.parent.mkdir(parents=True, exist_ok=True)
    with _writer_lock(db_path, lock_wait):
        con = _connect(db_path, read_only=False)
        try:
            migrate(con)
            yield con
        finally:
            con.close()  # checkpoints the WAL into the file before it is copied
        publish_snapshot(db_path)


@contextmanager
def open_writer(
    db_path: Path, *, source: str, target: str = "", started: datetime | None = None
) -> Iterator[WriteSession]:
    """Open the database for one collection run; commits and publishes the snapshot on success.
    ``started``: when the run began, if it did work (API fetches) before opening the store."""
    db_path = Path(db_path)
    with hold_store(db_path) as con:
        started = started or datetime.now(UTC)
        run_id = uuid.uuid4().hex
        session = WriteSession(con=con, db_path=db_path, source=source, target=target)
        con.execute("BEGIN TRANSACTION")
        try:
            yield session
            con.execute(
                "INSERT INTO collection_runs VALUES (?, ?, ?, ?, now(), 'ok', ?, ?)",
                [run_id, source, target, started, session.rows_written, "; ".join(session.messages)],
            )
            pause = os.environ.get(PAUSE_ENV)
            if pause:
                print(f"pausing {pause}s before commit", file=sys.stderr, flush=True)
                time.sleep(float(pause))
            con.execute("COMMIT")
        except BaseException as exc:
            con.execute("ROLLBACK")
            _record_failed_run(con, run_id, source, target, started, exc)
            raise


def _record_failed_run(
    con: duckdb.DuckDBPyConnection, run_id: str, source: str, target: str, started: datetime,
    exc: BaseException,
) -> None:
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    # Recording the failure is best-effort; the data itself was already rolled back.
    with contextlib.suppress(duckdb.Error):
        con.execute(
            "INSERT INTO collection_runs VALUES (?, ?, ?, ?, now(), 'failed', 0, ?)",
            [run_id, source, target, started, message[:500]],
        )


@contextmanager
def failures_recorded(db_path: Path, *, source: str, target: str = "") -> Iterator[datetime]:
    """Around the work a run does before it opens the store (API fetches, which may wait out rate
    limits without holding the writer lock): a failure there still gets its ``collection_runs``
    row, as a failure inside :func:`open_writer` does. Yields the run's start time."""
    started = datetime.now(UTC)
    try:
        yield started
    except BaseException as exc:
        # best-effort, like _record_failed_run: the error itself is what the user sees
        with contextlib.suppress(UserError, duckdb.Error, OSError), hold_store(db_path, lock_wait=0.0) as con:
            _record_failed_run(con, uuid.uuid4().hex, source, target, started, exc)
        raise


def publish_snapshot(db_path: Path) -> Path:
    """Copy the closed (checkpointed) database and atomically rename it into place."""
    target = snapshot_path(db_path)
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.copyfile(db_path, tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, target)
    return target


@dataclass
class ReadOnlyStore:
    con: duckdb.DuckDBPyConnection
    path: Path

    def close(self) -> None:
        self.con.close()


def open_reader(db_path: Path, *, install_views: bool = True) -> duckdb.DuckDBPyConnection:
    """A read-only connection on the published snapshot (or the main file if none exists)."""
    db_path = Path(db_path)
    snap = snapshot_path(db_path)
    if snap.exists():
        con = _connect(snap, read_only=True)
    elif db_path.exists():
        con = _connect(db_path, read_only=True)
    else:
        raise UserError(
            f"no database at {db_path}: run `gitops-dora demo` or a `gitops-dora collect` command first"
        )
    if install_views:
        from analytics.metrics.views import install_views as _install

        _install(con)
    return con
